//! Text from documents, and their type from the text.
//!
//! A background worker takes each new version in turn (a lease in the store, so replicas
//! share the work and a crashed worker's version is taken again): plain text is read as
//! it is, a PDF's text layer is read in Rust (`lopdf`), and images and scanned PDFs (no
//! text layer) go through Tesseract OCR (`tesseract`, with `pdftoppm` rendering a PDF's
//! pages). The text is stored per version with how it was got, and the document's type
//! is guessed from its title and text unless a user set it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::documents::{DocumentKind, Storage};
use crate::store::{ExtractionJob, Store};

/// `[serve.documents.extraction]`: the text extraction worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExtractionConfig {
    /// Whether this server extracts text (one replica is enough; more share the work).
    pub enabled: bool,
    /// The Tesseract program.
    pub tesseract: String,
    /// Tesseract's language(s), e.g. `eng` or `eng+spa`.
    pub languages: String,
    /// The program that renders PDF pages to images for OCR (poppler's `pdftoppm`).
    pub pdftoppm: String,
    /// Resolution pages are rendered at for OCR, dots per inch.
    pub ocr_dpi: u32,
    /// Most pages of one PDF to OCR.
    pub max_ocr_pages: u32,
    /// Seconds one program run may take before it is stopped.
    pub timeout_secs: u64,
    /// Milliseconds between looks for new versions when idle.
    pub poll_ms: u64,
    /// Attempts before a version's extraction is marked failed.
    pub max_attempts: i64,
}

impl Default for ExtractionConfig {
    fn default() -> Self {
        ExtractionConfig {
            enabled: true,
            tesseract: "tesseract".to_owned(),
            languages: "eng".to_owned(),
            pdftoppm: "pdftoppm".to_owned(),
            ocr_dpi: 300,
            max_ocr_pages: 50,
            timeout_secs: 120,
            poll_ms: 1000,
            max_attempts: 3,
        }
    }
}

impl ExtractionConfig {
    /// Checks the values serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        let bad = |key: &str, why: &str| Err(format!("serve.documents.extraction.{key}: {why}"));
        if !(72..=600).contains(&self.ocr_dpi) {
            return bad("ocr_dpi", "must be between 72 and 600");
        }
        if !(1..=1000).contains(&self.max_ocr_pages) {
            return bad("max_ocr_pages", "must be between 1 and 1000");
        }
        if !(1..=3600).contains(&self.timeout_secs) {
            return bad("timeout_secs", "must be between 1 and 3600");
        }
        if !(10..=60_000).contains(&self.poll_ms) {
            return bad("poll_ms", "must be between 10 and 60000");
        }
        if !(1..=20).contains(&self.max_attempts) {
            return bad("max_attempts", "must be between 1 and 20");
        }
        if self.languages.is_empty()
            || !self
                .languages
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '_')
        {
            return bad(
                "languages",
                "Tesseract language codes joined by +, e.g. eng+spa",
            );
        }
        Ok(())
    }
}

/// How a version's text was got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The file is text.
    Text,
    /// A PDF's text layer.
    PdfText,
    /// Optical character recognition.
    Ocr,
    /// The type holds no text this server reads (a zip, say): empty text.
    None,
}

impl Method {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Text => "text",
            Method::PdfText => "pdf_text",
            Method::Ocr => "ocr",
            Method::None => "none",
        }
    }
}

/// A version's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// The text.
    pub text: String,
    /// How.
    pub method: Method,
    /// Pages read (1 for an image or a text file).
    pub pages: i64,
}

/// A PDF whose text layer has fewer letters and digits than this is treated as scanned.
const MIN_TEXT_LAYER: usize = 16;
/// Most characters of text kept per version.
const MAX_TEXT: usize = 2_000_000;

/// Extracts the text of the file at `path`, whose sniffed type is `content_type`.
pub async fn extract(
    path: &Path,
    content_type: &str,
    config: &ExtractionConfig,
) -> Result<Extracted, String> {
    let kind = content_type.split(';').next().unwrap_or("").trim();
    let mut out = match kind {
        "text/plain" => {
            let bytes = tokio::fs::read(path)
                .await
                .map_err(|e| format!("reading the file: {e}"))?;
            Extracted {
                text: String::from_utf8_lossy(&bytes).into_owned(),
                method: Method::Text,
                pages: 1,
            }
        }
        "application/pdf" => {
            let file = path.to_owned();
            let layer = tokio::task::spawn_blocking(move || pdf_text(&file))
                .await
                .map_err(|e| format!("reading the PDF: {e}"))?;
            match layer {
                Ok((text, pages))
                    if text.chars().filter(|c| c.is_alphanumeric()).count() >= MIN_TEXT_LAYER =>
                {
                    Extracted {
                        text,
                        method: Method::PdfText,
                        pages,
                    }
                }
                // No usable text layer (a scan), or one lopdf cannot read: OCR the pages.
                _ => ocr_pdf(path, config).await?,
            }
        }
        "image/png" | "image/jpeg" | "image/tiff" | "image/gif" | "image/webp" => Extracted {
            text: tesseract(path, config).await?,
            method: Method::Ocr,
            pages: 1,
        },
        _ => Extracted {
            text: String::new(),
            method: Method::None,
            pages: 0,
        },
    };
    if out.text.len() > MAX_TEXT {
        let mut cut = MAX_TEXT;
        while !out.text.is_char_boundary(cut) {
            cut -= 1;
        }
        out.text.truncate(cut);
    }
    out.text = out.text.replace('\0', "");
    Ok(out)
}

/// The text layer of a PDF and its page count.
fn pdf_text(path: &Path) -> Result<(String, i64), String> {
    let doc = lopdf::Document::load(path).map_err(|e| format!("parsing the PDF: {e}"))?;
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    let mut text = String::new();
    for page in &pages {
        // A page whose fonts lopdf cannot decode contributes nothing rather than failing
        // the whole document.
        if let Ok(t) = doc.extract_text(&[*page]) {
            text.push_str(&t);
            text.push('\n');
        }
    }
    Ok((text, pages.len() as i64))
}

/// Runs a program with a time limit; its standard output on success.
async fn run(
    program: &str,
    args: &[&std::ffi::OsStr],
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(timeout, command.output())
        .await
        .map_err(|_| format!("{program} took longer than {} s", timeout.as_secs()))?
        .map_err(|e| format!("cannot run {program} (is it installed?): {e}"))?;
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "{program} failed ({}): {}",
            output.status,
            err.trim().chars().take(300).collect::<String>()
        ));
    }
    Ok(output.stdout)
}

/// OCR of one image.
async fn tesseract(image: &Path, config: &ExtractionConfig) -> Result<String, String> {
    let out = run(
        &config.tesseract,
        &[
            image.as_os_str(),
            "stdout".as_ref(),
            "-l".as_ref(),
            config.languages.as_ref(),
        ],
        Duration::from_secs(config.timeout_secs),
    )
    .await?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// OCR of a PDF's pages, rendered by `pdftoppm`.
async fn ocr_pdf(pdf: &Path, config: &ExtractionConfig) -> Result<Extracted, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("a scratch directory: {e}"))?;
    let prefix: PathBuf = dir.path().join("page");
    let dpi = config.ocr_dpi.to_string();
    let last = config.max_ocr_pages.to_string();
    run(
        &config.pdftoppm,
        &[
            "-r".as_ref(),
            dpi.as_ref(),
            "-l".as_ref(),
            last.as_ref(),
            "-png".as_ref(),
            pdf.as_os_str(),
            prefix.as_os_str(),
        ],
        Duration::from_secs(config.timeout_secs),
    )
    .await?;
    let mut pages: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .map_err(|e| format!("reading rendered pages: {e}"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .collect();
    // pdftoppm numbers pages with as many digits as the last one needs, so names sort.
    pages.sort();
    let mut text = String::new();
    for page in &pages {
        text.push_str(&tesseract(page, config).await?);
        text.push('\n');
    }
    Ok(Extracted {
        text,
        method: Method::Ocr,
        pages: pages.len() as i64,
    })
}

/// Phrases that mark each type, with their weight. Matched on lower-cased text with runs
/// of whitespace made single spaces.
const CUES: &[(DocumentKind, &[(&str, u32)])] = &[
    (
        DocumentKind::ClosingDisclosure,
        &[
            ("closing disclosure", 6),
            ("cash to close", 3),
            ("projected payments", 3),
            ("loan terms", 2),
            ("closing costs", 2),
            ("closing information", 2),
        ],
    ),
    (
        DocumentKind::Deed,
        &[
            ("warranty deed", 6),
            ("quitclaim deed", 6),
            ("grant deed", 6),
            ("grantor", 2),
            ("grantee", 2),
            ("conveys", 2),
            ("hereby grant", 2),
            ("deed", 1),
        ],
    ),
    (
        DocumentKind::TitlePolicy,
        &[
            ("title insurance", 5),
            ("owner's policy", 4),
            ("lender's policy", 4),
            ("policy of title", 5),
            ("schedule b", 1),
            ("exceptions from coverage", 3),
        ],
    ),
    (
        DocumentKind::InspectionReport,
        &[
            ("inspection report", 6),
            ("home inspection", 4),
            ("inspector", 2),
            ("roof", 1),
            ("foundation", 1),
            ("electrical panel", 2),
            ("recommend repair", 2),
        ],
    ),
    (
        DocumentKind::Appraisal,
        &[
            ("uniform residential appraisal report", 8),
            ("appraisal", 4),
            ("appraiser", 3),
            ("comparable sales", 3),
            ("opinion of value", 3),
            ("market value", 1),
        ],
    ),
    (
        DocumentKind::Hoa,
        &[
            ("homeowners association", 5),
            ("homeowners' association", 5),
            ("hoa", 3),
            ("covenants, conditions", 4),
            ("bylaws", 2),
            ("special assessment", 2),
        ],
    ),
    (
        DocumentKind::Insurance,
        &[
            ("homeowners insurance", 5),
            ("declarations page", 5),
            ("dwelling coverage", 4),
            ("premium", 2),
            ("deductible", 2),
            ("policy period", 2),
        ],
    ),
    (
        DocumentKind::TaxStatement,
        &[
            ("property tax", 5),
            ("tax statement", 6),
            ("tax bill", 5),
            ("assessed value", 3),
            ("tax year", 2),
            ("installment", 1),
        ],
    ),
];

/// Evidence below this is not enough to call a type: the document is `other`.
const MIN_EVIDENCE: f64 = 4.0;

/// The type of a document from its title and text, with a confidence in [0, 1]: how
/// much of the evidence points at the winner, times how much evidence there is. With too
/// little evidence it is `other`, as confident as the evidence is thin.
pub fn classify(title: &str, text: &str) -> (DocumentKind, f64) {
    let mut hay = String::with_capacity(title.len() + text.len().min(200_000) + 1);
    let mut space = true;
    let mut lower = false;
    // The title counts as much as the first pages: it is what a person called it.
    for c in title
        .chars()
        .chain(std::iter::once('\n'))
        .chain(text.chars().take(200_000))
    {
        if c.is_whitespace() {
            if !space {
                hay.push(' ');
            }
            space = true;
        } else {
            // Text layers often run lines together ("DisclosureLoan Terms"): a capital
            // right after a small letter starts a new word.
            if lower && c.is_uppercase() {
                hay.push(' ');
            }
            hay.extend(c.to_lowercase());
            space = false;
        }
        lower = c.is_lowercase();
    }
    let mut scores: Vec<(DocumentKind, f64)> = CUES
        .iter()
        .map(|(kind, cues)| {
            let score = cues
                .iter()
                .map(|(phrase, weight)| {
                    let hits = count_words(&hay, phrase).min(3);
                    f64::from(*weight) * hits as f64
                })
                .sum::<f64>();
            (*kind, score)
        })
        .collect();
    scores.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total: f64 = scores.iter().map(|(_, s)| s).sum();
    let (best, best_score) = scores[0];
    if best_score < MIN_EVIDENCE {
        return (DocumentKind::Other, 1.0 - best_score / (2.0 * MIN_EVIDENCE));
    }
    let share = best_score / total;
    let strength = 1.0 - (-best_score / 8.0).exp();
    (best, (share * strength).clamp(0.0, 1.0))
}

/// How many times `phrase` occurs in `hay` as whole words.
fn count_words(hay: &str, phrase: &str) -> usize {
    let bytes = hay.as_bytes();
    hay.match_indices(phrase)
        .filter(|(at, _)| {
            let before = at.checked_sub(1).map(|i| bytes[i]);
            let after = bytes.get(at + phrase.len()).copied();
            let word = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
            !word(before) && !word(after)
        })
        .count()
}

/// Extracts text from versions as they arrive, until the handle is dropped.
pub async fn work(store: Store, storage: Storage, config: ExtractionConfig) {
    let idle = Duration::from_millis(config.poll_ms);
    // Long enough for the slowest job: rendering the pages and OCR of each, every run
    // at its time limit, so that no other worker takes over a version still being read.
    let lease = config.timeout_secs as i64 * (i64::from(config.max_ocr_pages) + 1) + 60;
    loop {
        match store.claim_extraction(crate::unix_now(), lease).await {
            Ok(Some(job)) => process(&store, &storage, &config, job).await,
            Ok(None) => tokio::time::sleep(idle).await,
            Err(e) => {
                tracing::error!(error = %e, "claiming a document to extract text from");
                tokio::time::sleep(idle).await;
            }
        }
    }
}

async fn process(store: &Store, storage: &Storage, config: &ExtractionConfig, job: ExtractionJob) {
    let result = async {
        let dir = tempfile::tempdir().map_err(|e| format!("a scratch directory: {e}"))?;
        let file = dir.path().join("document");
        storage.download_to(&job.object_key, &file).await?;
        extract(&file, &job.content_type, config).await
    }
    .await;
    let now = crate::unix_now();
    let outcome = match result {
        Ok(extracted) => {
            let guess = classify(&job.title, &extracted.text);
            store
                .finish_extraction(&job, Ok(&extracted), Some(guess), now)
                .await
        }
        Err(why) => {
            tracing::warn!(version = %job.version_id, attempt = job.attempts, error = %why, "extracting a document's text");
            let retry_at = (job.attempts < config.max_attempts)
                .then(|| now + 30 * (1 << job.attempts.clamp(0, 10)));
            store
                .finish_extraction(&job, Err((&why, retry_at)), None, now)
                .await
        }
    };
    if let Err(e) = outcome {
        tracing::error!(version = %job.version_id, error = %e, "storing a document's text");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_title_and_text() {
        let (kind, c) = classify(
            "scan_0012.pdf",
            "WARRANTY DEED\nThe Grantor hereby conveys to the Grantee the parcel below.",
        );
        assert_eq!(kind, DocumentKind::Deed);
        assert!(c > 0.5, "{c}");
        let (kind, _) = classify(
            "Closing papers",
            "Closing Disclosure. Loan Terms. Projected Payments. Cash to Close $12,400.",
        );
        assert_eq!(kind, DocumentKind::ClosingDisclosure);
        let (kind, _) = classify(
            "2024 bill",
            "Story County property tax statement, tax year 2024",
        );
        assert_eq!(kind, DocumentKind::TaxStatement);
        let (kind, c) = classify("notes", "Bring the blue folder on Tuesday.");
        assert_eq!(kind, DocumentKind::Other);
        assert!(c > 0.9, "no evidence at all is confidently other: {c}");
        // Lines a text layer ran together are still read as words.
        let (kind, _) = classify(
            "Closing papers",
            "Closing DisclosureLoan Terms and Projected PaymentsCash to Close: $12,400.00",
        );
        assert_eq!(kind, DocumentKind::ClosingDisclosure);
        // Whole words only: "shoa" is not "hoa".
        assert_eq!(count_words("the shoal hoa, and hoa.", "hoa"), 2);
        // More evidence, more confidence.
        let (kind, weak) = classify("", "appraisal by the appraiser");
        assert_eq!(kind, DocumentKind::Appraisal);
        let (_, strong) = classify(
            "",
            "Uniform Residential Appraisal Report. The appraiser's opinion of value from comparable sales.",
        );
        assert!(strong > weak, "{weak} {strong}");
    }

    #[test]
    fn bad_settings_are_named() {
        ExtractionConfig::default().validate().expect("defaults");
        let c = ExtractionConfig {
            languages: "eng; rm -rf".into(),
            ..ExtractionConfig::default()
        };
        assert!(c.validate().expect_err("languages").contains("languages"));
    }
}
