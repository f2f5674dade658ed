//! Merge tags for homeowner e-mail campaigns.
//!
//! A campaign message is three [MiniJinja](https://docs.rs/minijinja) templates: a
//! **subject**, an **HTML part** and a **plain-text part**. Each is personalised
//! per recipient with *merge tags* from the fixed catalog in [`TAGS`] (served by
//! the API so editors can browse it).
//!
//! # Writing a template
//!
//! Print a tag with `{{ group.name }}`, for example `{{ contact.first_name }}`
//! or `{{ equity.amount }}`; the send date is the single name `{{ today }}`.
//! Every value is a display-ready string: money, percentages and dates arrive
//! already formatted (`$412,300`, `+4.2%`, `March 3, 2019`). The usual MiniJinja
//! statements and built-in filters work (`{% if %}`, `{% for %}`, `{% set %}`,
//! macros, `upper`, `title`, `trim`, `replace`, `default`, ...).
//!
//! Templates are checked when compiled: a syntax error, or a name that is not in
//! the catalog (a misspelt `{{ contact.frist_name }}`, a bare group such as
//! `{{ contact }}`, an unknown `{{ foo }}`) is rejected with the part, the line
//! and, when a catalog tag is close, a suggestion. Names the template binds
//! itself (`{% set %}`, loop variables, macro arguments) are fine. Block tags
//! swallow the newline after them and the indentation before them, so
//! `{% if %}` lines leave no blank lines in the text part.
//!
//! # Fallbacks and `default`
//!
//! A value that is missing, or an empty string, is *missing*. A missing tag:
//! - prints as the tag's catalog fallback (`{{ contact.first_name }}` prints
//!   `there`; most fallbacks are empty), and filters other than `default` see
//!   the fallback text (`{{ contact.first_name | upper }}` prints `THERE`);
//! - is replaced by `default`: `{{ contact.first_name | default("friend") }}`
//!   prints `friend`, so a template's own default wins over the catalog's;
//! - is false in conditions and fails `is defined`, so
//!   `{% if equity.cash_out %}...{% endif %}` skips the block.
//!
//! # Escaping
//!
//! The HTML part escapes every printed value (`&`, `<`, `>`, `"`, `'`): a
//! contact named `<b>Ann</b>` appears as `&lt;b&gt;Ann&lt;/b&gt;`. The subject and
//! the text part are never escaped. Use `| safe` only for trusted markup.
//!
//! # Example
//!
//! ```text
//! subject: {{ contact.first_name }}, your home gained {{ valuation.change_pct }}
//! html:    <p>Hi {{ contact.first_name }},</p>
//!          <p>{{ property.address }} is now worth about <b>{{ valuation.value }}</b>.</p>
//!          {% if equity.amount %}<p>Your equity: {{ equity.amount }} ({{ equity.percent }}).</p>{% endif %}
//!          <a href="{{ links.unsubscribe }}">Unsubscribe</a>
//! text:    Hi {{ contact.first_name | default("neighbor") }},
//!          {{ property.address }} is now worth about {{ valuation.value }}.
//! ```
//!
//! In code: fill a [`MergeValues`] per recipient (the helpers [`money`],
//! [`count`], [`percent`], [`signed_percent`], [`long_date`] and [`month_year`]
//! format numbers and dates), then call [`Template::render`] on a template
//! compiled once with [`Template::compile`].

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, LazyLock, OnceLock};

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Object, ObjectRepr, Rest};
use minijinja::{AutoEscape, Environment, Error, Output, State, Value, filters};

/// One merge tag of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    /// Dotted name used in templates, e.g. `contact.first_name`.
    pub name: &'static str,
    /// What the value is, for template authors.
    pub description: &'static str,
    /// A realistic display value, used for previews.
    pub example: &'static str,
    /// Text printed when the value is missing or empty (often empty).
    pub fallback: &'static str,
}

const fn tag(
    name: &'static str,
    description: &'static str,
    example: &'static str,
    fallback: &'static str,
) -> Tag {
    Tag {
        name,
        description,
        example,
        fallback,
    }
}

/// The merge-tag catalog. A tag's position is its index in [`MergeValues`].
#[rustfmt::skip]
pub static TAGS: [Tag; 49] = [
    tag("contact.first_name", "Homeowner's first name.", "Dana", "there"),
    tag("contact.last_name", "Homeowner's last name.", "Whitfield", ""),
    tag("contact.full_name", "Homeowner's full name.", "Dana Whitfield", "Homeowner"),
    tag("contact.email", "Homeowner's e-mail address.", "dana.whitfield@example.com", ""),
    tag("contact.closed_on", "Date the homeowner closed on the purchase.", "March 3, 2019", ""),
    tag("contact.tenure_years", "Whole years since the purchase closed.", "7", ""),
    tag("property.address", "Street address of the home.", "123 Oak St", ""),
    tag("property.city", "City of the home.", "Ames", ""),
    tag("property.state", "Two-letter state code of the home.", "IA", ""),
    tag("property.zip", "ZIP code of the home.", "50010", ""),
    tag("property.full_address", "Street, city, state and ZIP on one line.", "123 Oak St, Ames, IA 50010", ""),
    tag("property.beds", "Number of bedrooms.", "3", ""),
    tag("property.baths", "Number of bathrooms.", "2.5", ""),
    tag("property.sqft", "Finished living area in square feet.", "1,850", ""),
    tag("property.year_built", "Year the home was built.", "1998", ""),
    tag("property.property_type", "Kind of home, in words.", "single-family home", "home"),
    tag("property.age_years", "Age of the home in years.", "28", ""),
    tag("valuation.value", "Current estimated market value.", "$412,300", ""),
    tag("valuation.low", "Low end of the value range.", "$391,700", ""),
    tag("valuation.high", "High end of the value range.", "$432,900", ""),
    tag("valuation.as_of", "Date of the valuation.", "October 1, 2026", ""),
    tag("valuation.change_pct", "Change in value over the last 12 months.", "+4.2%", ""),
    tag("equity.amount", "Estimated equity: value minus loan balance.", "$173,800", ""),
    tag("equity.percent", "Equity as a share of the value.", "42%", ""),
    tag("equity.ltv", "Loan-to-value ratio.", "58%", ""),
    tag("equity.loan_balance", "Estimated remaining loan balance.", "$238,500", ""),
    tag("equity.loan_rate", "Interest rate of the current loan.", "6.25%", ""),
    tag("equity.market_rate", "Typical rate for a new 30-year loan today.", "5.40%", ""),
    tag("equity.refinance_saving", "Estimated monthly saving from refinancing.", "$212/month", ""),
    tag("equity.cash_out", "Cash available at 80% loan-to-value.", "$91,340", ""),
    tag("market.zip", "ZIP code of the market report.", "50010", ""),
    tag("market.month", "Month of the market report.", "October 2026", ""),
    tag("market.median_price", "Median sale price in the ZIP code.", "$389,000", ""),
    tag("market.median_price_per_sqft", "Median sale price per square foot.", "$214", ""),
    tag("market.yoy_change", "Year-over-year change of the median price.", "+3.1%", ""),
    tag("market.sales", "Number of sales in the ZIP code last month.", "48", ""),
    tag("agent.name", "Full name of the homeowner's agent.", "Jordan Ellis", ""),
    tag("agent.first_name", "First name of the agent.", "Jordan", ""),
    tag("agent.email", "E-mail address of the agent.", "jordan.ellis@example.com", ""),
    tag("org.name", "Name of the sending organisation.", "Prairie Home Realty", ""),
    tag("org.logo_url", "URL of the organisation's logo image.", "https://cdn.example.com/prairie/logo.png", ""),
    tag("org.website", "Organisation's website.", "https://prairiehome.example.com", ""),
    tag("org.postal_address", "Postal address required in the footer.", "500 Main St, Ames, IA 50010", ""),
    tag("org.primary_color", "Brand colour as a CSS hex value.", "#0b7a4b", "#1f6feb"),
    tag("org.support_email", "Reply-to address for questions.", "help@prairiehome.example.com", ""),
    tag("links.unsubscribe", "One-click unsubscribe link for this recipient.", "https://prairiehome.example.com/u/k3x9", ""),
    tag("links.preferences", "E-mail preferences link for this recipient.", "https://prairiehome.example.com/p/k3x9", ""),
    tag("campaign.name", "Name of the campaign.", "Fall equity update", ""),
    tag("today", "Send date.", "October 14, 2026", ""),
];

/// Tag groups, in catalog order; each group's tags are contiguous in [`TAGS`].
#[rustfmt::skip]
const GROUPS: [&str; 9] =
    ["contact", "property", "valuation", "equity", "market", "agent", "org", "links", "campaign"];

/// Largest accepted template part, in bytes.
pub const MAX_PART_BYTES: usize = 256 * 1024;

struct Catalog {
    by_name: HashMap<&'static str, usize>,
    /// Index range of each entry of [`GROUPS`].
    groups: [(usize, usize); GROUPS.len()],
    /// The value standing for each tag when it is missing.
    missing: Vec<Value>,
}

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    let mut groups = [(0, 0); GROUPS.len()];
    for (g, name) in GROUPS.iter().enumerate() {
        let mut members = TAGS
            .iter()
            .enumerate()
            .filter(|(_, t)| group_of(t.name) == Some(name));
        let start = members.next().map_or(0, |(i, _)| i);
        groups[g] = (start, start + 1 + members.count());
    }
    Catalog {
        by_name: TAGS.iter().enumerate().map(|(i, t)| (t.name, i)).collect(),
        groups,
        missing: (0..TAGS.len())
            .map(|i| Value::from_object(Missing(i)))
            .collect(),
    }
});

fn group_of(name: &str) -> Option<&str> {
    name.split_once('.').map(|(g, _)| g)
}

/// Position of a tag in [`TAGS`], or `None` if the name is not a tag.
pub fn tag_index(name: &str) -> Option<usize> {
    CATALOG.by_name.get(name).copied()
}

// ---------------------------------------------------------------------------
// Formatting helpers
// ---------------------------------------------------------------------------

fn push_grouped(out: &mut String, digits: &str) {
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
}

fn whole(v: f64, prefix: &str) -> String {
    if !v.is_finite() {
        return String::new();
    }
    let r = v.round();
    let digits = format!("{:.0}", r.abs());
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 2);
    if r < 0.0 {
        out.push('-');
    }
    out.push_str(prefix);
    push_grouped(&mut out, &digits);
    out
}

/// Whole dollars with thousands separators: `412300.4` → `"$412,300"`,
/// `-1200.0` → `"-$1,200"`. A non-finite input gives `""` (prints the fallback).
pub fn money(v: f64) -> String {
    whole(v, "$")
}

/// A whole number with thousands separators: `1850.0` → `"1,850"`.
/// A non-finite input gives `""`.
pub fn count(v: f64) -> String {
    whole(v, "")
}

fn fixed(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.starts_with('-') && s.bytes().all(|b| matches!(b, b'-' | b'0' | b'.')) {
        s[1..].to_owned()
    } else {
        s
    }
}

/// A percentage given in percent units: `percent(42.15, 0)` → `"42%"`,
/// `percent(6.25, 2)` → `"6.25%"`. A non-finite input gives `""`.
pub fn percent(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return String::new();
    }
    let mut s = fixed(v, decimals);
    s.push('%');
    s
}

/// A change in percent units with one decimal and a sign: `4.2` → `"+4.2%"`,
/// `-0.8` → `"-0.8%"`, zero → `"0.0%"`. A non-finite input gives `""`.
pub fn signed_percent(v: f64) -> String {
    if !v.is_finite() {
        return String::new();
    }
    let s = fixed(v, 1);
    if s.starts_with('-') || s == "0.0" {
        format!("{s}%")
    } else {
        format!("+{s}%")
    }
}

#[rustfmt::skip]
const MONTHS: [&str; 12] = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
];

/// A long date: `long_date(2019, 3, 3)` → `"March 3, 2019"`. Month outside
/// 1..=12 or day outside 1..=31 gives `""`.
pub fn long_date(year: i32, month: u32, day: u32) -> String {
    match month.checked_sub(1).and_then(|m| MONTHS.get(m as usize)) {
        Some(name) if (1..=31).contains(&day) => format!("{name} {day}, {year}"),
        _ => String::new(),
    }
}

/// A month and year: `month_year(2026, 10)` → `"October 2026"`. Month outside
/// 1..=12 gives `""`.
pub fn month_year(year: i32, month: u32) -> String {
    match month.checked_sub(1).and_then(|m| MONTHS.get(m as usize)) {
        Some(name) => format!("{name} {year}"),
        None => String::new(),
    }
}

// ---------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------

/// Values for one recipient, in catalog order (index = position of the tag in
/// [`TAGS`]). Empty strings count as missing.
#[derive(Debug, Clone)]
pub struct MergeValues {
    slots: Arc<Vec<Option<Value>>>,
}

impl Default for MergeValues {
    fn default() -> Self {
        Self::new()
    }
}

impl MergeValues {
    /// Values with every tag missing.
    pub fn new() -> Self {
        Self {
            slots: Arc::new(vec![None; TAGS.len()]),
        }
    }

    /// Values set to every tag's catalog example, for previews.
    pub fn examples() -> Self {
        let mut values = Self::new();
        for (i, t) in TAGS.iter().enumerate() {
            values.set_index(i, t.example.to_owned());
        }
        values
    }

    /// Sets a tag by name; returns `false` (and changes nothing) if the tag is unknown.
    pub fn set(&mut self, tag: &str, value: impl Into<String>) -> bool {
        match tag_index(tag) {
            Some(i) => {
                self.set_index(i, value.into());
                true
            }
            None => false,
        }
    }

    /// Sets a tag by its position in [`TAGS`]; an index past the end is ignored.
    pub fn set_index(&mut self, index: usize, value: String) {
        let slot = if value.is_empty() {
            None
        } else {
            Some(Value::from(value))
        };
        if let Some(s) = Arc::make_mut(&mut self.slots).get_mut(index) {
            *s = slot;
        }
    }

    /// The value of a tag, or `None` if it is unknown, missing or empty.
    pub fn get(&self, tag: &str) -> Option<&str> {
        self.slots.get(tag_index(tag)?)?.as_ref()?.as_str()
    }
}

fn lookup(slots: &[Option<Value>], index: usize) -> Option<Value> {
    match slots.get(index) {
        Some(Some(v)) => Some(v.clone()),
        _ => CATALOG.missing.get(index).cloned(),
    }
}

/// Stand-in for a missing tag: prints as the fallback, is false and undefined
/// to `default` and `is defined`.
#[derive(Debug)]
struct Missing(usize);

impl Missing {
    fn text(&self) -> &'static str {
        TAGS.get(self.0).map_or("", |t| t.fallback)
    }
}

impl Object for Missing {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn is_true(self: &Arc<Self>) -> bool {
        false
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

fn is_missing(value: &Value) -> bool {
    value.downcast_object_ref::<Missing>().is_some()
}

/// The template context: group views built on first use, shared by the three parts.
#[derive(Debug)]
struct Root {
    slots: Arc<Vec<Option<Value>>>,
    groups: [OnceLock<Value>; GROUPS.len()],
}

impl Object for Root {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        if let Some(g) = GROUPS.iter().position(|name| *name == key) {
            let (start, end) = CATALOG.groups[g];
            let view = self.groups[g].get_or_init(|| {
                Value::from_object(Group {
                    slots: Arc::clone(&self.slots),
                    start,
                    end,
                    prefix: key.len() + 1,
                })
            });
            return Some(view.clone());
        }
        // The only top-level tag is `today`; dotted names live in groups.
        let i = tag_index(key).filter(|_| !key.contains('.'))?;
        lookup(&self.slots, i)
    }
}

/// The tags of one group, e.g. `contact`.
#[derive(Debug)]
struct Group {
    slots: Arc<Vec<Option<Value>>>,
    start: usize,
    end: usize,
    prefix: usize,
}

impl Object for Group {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        let i = (self.start..self.end)
            .find(|&i| TAGS.get(i).and_then(|t| t.name.get(self.prefix..)) == Some(key))?;
        lookup(&self.slots, i)
    }
}

// ---------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------

/// One of the three parts of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// The subject line.
    Subject,
    /// The HTML body (values are escaped).
    Html,
    /// The plain-text body.
    Text,
}

impl Part {
    /// Lower-case name: `subject`, `html` or `text`.
    pub fn name(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Html => "html",
            Part::Text => "text",
        }
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a template could not be compiled or rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A part's source is larger than [`MAX_PART_BYTES`].
    #[error("{part} part is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The part.
        part: Part,
        /// Its size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The subject is empty or only whitespace.
    #[error("subject part is empty")]
    EmptySubject,
    /// MiniJinja could not parse a part.
    #[error("syntax error in {part} part, line {line}: {message}")]
    Syntax {
        /// The part.
        part: Part,
        /// 1-based line of the error.
        line: usize,
        /// MiniJinja's description.
        message: String,
    },
    /// A part refers to a name that is not a catalog tag.
    #[error("unknown merge tag `{tag}` in {part} part, line {line}{}", hint(.tag, .suggestion))]
    UnknownTag {
        /// The part.
        part: Part,
        /// 1-based line of the first reference.
        line: usize,
        /// The name as written (dotted).
        tag: String,
        /// A close catalog tag, if any.
        suggestion: Option<&'static str>,
    },
    /// Rendering a part failed (for example a filter given a bad argument).
    #[error("cannot render {part} part{}: {message}", at_line(*.line))]
    Render {
        /// The part.
        part: Part,
        /// 1-based line, when known.
        line: Option<usize>,
        /// MiniJinja's description.
        message: String,
    },
}

fn hint(tag: &str, suggestion: &Option<&'static str>) -> String {
    match suggestion {
        Some(s) if GROUPS.contains(&tag) => format!(" (a group, not a tag; use e.g. `{s}`)"),
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    }
}

fn at_line(line: Option<usize>) -> String {
    line.map(|l| format!(", line {l}")).unwrap_or_default()
}

fn describe(err: &Error) -> String {
    match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    }
}

fn render_error(part: Part, err: &Error) -> TemplateError {
    TemplateError::Render {
        part,
        line: err.line(),
        message: describe(err),
    }
}

/// A compiled message template; cheap to share across threads.
#[derive(Debug)]
pub struct Template {
    env: Environment<'static>,
}

/// One personalised message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The subject line.
    pub subject: String,
    /// The HTML body.
    pub html: String,
    /// The plain-text body.
    pub text: String,
}

const PARTS: [Part; 3] = [Part::Subject, Part::Html, Part::Text];

impl Template {
    /// Parses and checks the three parts. Fails on an oversized part, an empty
    /// subject, a syntax error, or a name that is not a catalog tag (the first
    /// by part, then by position). It then renders once with the catalog
    /// examples and once with every tag missing, so filter errors on those
    /// paths surface now as [`TemplateError::Render`].
    pub fn compile(subject: &str, html: &str, text: &str) -> Result<Template, TemplateError> {
        let sources = [subject, html, text];
        for (part, src) in PARTS.into_iter().zip(sources) {
            if src.len() > MAX_PART_BYTES {
                return Err(TemplateError::TooLarge {
                    part,
                    size: src.len(),
                    limit: MAX_PART_BYTES,
                });
            }
        }
        if subject.trim().is_empty() {
            return Err(TemplateError::EmptySubject);
        }
        let mut env = environment();
        for (part, src) in PARTS.into_iter().zip(sources) {
            env.add_template_owned(part.name(), src.to_owned())
                .map_err(|e| TemplateError::Syntax {
                    part,
                    line: e.line().unwrap_or(1),
                    message: describe(&e),
                })?;
        }
        let globals: Vec<&str> = env.globals().map(|(name, _)| name).collect();
        for (part, src) in PARTS.into_iter().zip(sources) {
            let tmpl = env
                .get_template(part.name())
                .map_err(|e| render_error(part, &e))?;
            let unknown: HashSet<String> = tmpl
                .undeclared_variables(true)
                .into_iter()
                .filter(|name| {
                    let root = name.split('.').next().unwrap_or(name);
                    tag_index(name).is_none() && !globals.contains(&root)
                })
                .collect();
            if let Some((offset, tag)) = first_reference(src, &unknown) {
                let before = src.get(..offset).unwrap_or("");
                let line = 1 + before.bytes().filter(|&b| b == b'\n').count();
                let suggestion = suggest(&tag);
                return Err(TemplateError::UnknownTag {
                    part,
                    line,
                    tag,
                    suggestion,
                });
            }
        }
        let template = Template { env };
        template.render(&MergeValues::examples())?;
        template.render(&MergeValues::new())?;
        Ok(template)
    }

    /// Renders the three parts for one recipient.
    pub fn render(&self, values: &MergeValues) -> Result<Rendered, TemplateError> {
        let root = Value::from_object(Root {
            slots: Arc::clone(&values.slots),
            groups: Default::default(),
        });
        Ok(Rendered {
            subject: self.render_part(Part::Subject, &root)?,
            html: self.render_part(Part::Html, &root)?,
            text: self.render_part(Part::Text, &root)?,
        })
    }

    fn render_part(&self, part: Part, root: &Value) -> Result<String, TemplateError> {
        let tmpl = self
            .env
            .get_template(part.name())
            .map_err(|e| render_error(part, &e))?;
        tmpl.render(root.clone())
            .map_err(|e| render_error(part, &e))
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| {
        if name == Part::Html.name() {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_formatter(format_value);
    env.add_filter("default", default_filter);
    env.add_filter("d", default_filter);
    // Filters that inspect the value's type get a missing tag's fallback text.
    env.add_filter("length", |v: &Value| filters::length(&text_of(v)));
    env.add_filter("count", |v: &Value| filters::length(&text_of(v)));
    env.add_filter("first", |v: &Value| filters::first(&text_of(v)));
    env.add_filter("last", |v: &Value| filters::last(text_of(v)));
    env.add_filter("reverse", |v: &Value| filters::reverse(&text_of(v)));
    env.add_filter("lines", |v: &Value| filters::lines(&text_of(v)));
    env.add_filter(
        "split",
        |v: &Value, on: Option<Arc<str>>, max: Option<i64>| filters::split(&text_of(v), on, max),
    );
    env.add_test("defined", |v: &Value| !v.is_undefined() && !is_missing(v));
    env.add_test("undefined", |v: &Value| v.is_undefined() || is_missing(v));
    if let Ok(syntax) = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    env
}

/// A missing tag as its fallback text; any other value unchanged.
fn text_of(value: &Value) -> Value {
    match value.downcast_object_ref::<Missing>() {
        Some(missing) => Value::from(missing.text()),
        None => value.clone(),
    }
}

/// `default` that also replaces a missing tag.
fn default_filter(state: &State, value: &Value, args: Rest<Value>) -> Result<Value, Error> {
    if is_missing(value) {
        filters::default(state, &Value::UNDEFINED, args)
    } else {
        filters::default(state, value, args)
    }
}

/// Prints strings and missing tags directly (escaped in HTML), everything else
/// the MiniJinja way.
fn format_value(
    out: &mut Output<'_>,
    state: &mut State<'_, '_>,
    value: &Value,
) -> Result<(), Error> {
    let text = match (value.as_str(), value.downcast_object_ref::<Missing>()) {
        (Some(s), _) => s,
        (None, Some(missing)) => missing.text(),
        (None, None) => return minijinja::escape_formatter(out, state, value),
    };
    let result = if matches!(state.auto_escape(), AutoEscape::Html) && !value.is_safe() {
        write_html(out, text)
    } else {
        fmt::Write::write_str(out, text)
    };
    result.map_err(Error::from)
}

fn write_html(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    let mut last = 0;
    for (i, b) in s.bytes().enumerate() {
        let entity = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => continue,
        };
        out.write_str(&s[last..i])?;
        out.write_str(entity)?;
        last = i + 1;
    }
    out.write_str(&s[last..])
}

// ---------------------------------------------------------------------------
// Locating and suggesting unknown names
// ---------------------------------------------------------------------------

/// The first of `names` referenced in the code of `src` (inside `{{ }}` and
/// `{% %}`, outside strings, comments and raw blocks) and its byte offset.
/// A name whose exact chain is not found is placed at the first use of its
/// first segment; one not found at all at offset 0. One pass over `src`.
fn first_reference(src: &str, names: &HashSet<String>) -> Option<(usize, String)> {
    let mut by_root: HashMap<&str, &String> = HashMap::new();
    for name in names {
        let root = name.split('.').next().unwrap_or(name);
        let entry = by_root.entry(root).or_insert(name);
        *entry = (*entry).min(name);
    }
    let (mut exact, mut first_root) = (None, None);
    scan_chains(src, &mut |offset, chain| {
        let joined = chain.join(".");
        if names.contains(&joined) {
            exact = Some((offset, joined));
            return false;
        }
        if first_root.is_none()
            && let Some(name) = chain.first().and_then(|root| by_root.get(root))
        {
            first_root = Some((offset, (*name).clone()));
        }
        true
    });
    exact
        .or(first_root)
        .or_else(|| names.iter().min().map(|name| (0, name.clone())))
}

fn find_from(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Calls `f` with the offset and segments of each `a.b.c` chain in code
/// positions where it names a variable; stops when `f` returns `false`.
fn scan_chains(src: &str, f: &mut dyn FnMut(usize, &[&str]) -> bool) {
    let b = src.as_bytes();
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] != b'{' || !matches!(b[i + 1], b'{' | b'%' | b'#') {
            i += 1;
            continue;
        }
        if b[i + 1] == b'#' {
            i = find_from(b, i + 2, b"#}").map_or(b.len(), |p| p + 2);
            continue;
        }
        let block = b[i + 1] == b'%';
        let start = i + 2;
        let end = code_end(b, start, block);
        let inner =
            src[start..end].trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        if block && inner == "raw" {
            i = find_from(b, end, b"endraw")
                .and_then(|p| find_from(b, p, b"%}"))
                .map_or(b.len(), |p| p + 2);
            continue;
        }
        if !scan_code(src, start, end, f) {
            return;
        }
        i = end + 2;
    }
}

/// Index of the `}}` or `%}` closing the tag whose code starts at `start`.
fn code_end(b: &[u8], start: usize, block: bool) -> usize {
    let (mut j, mut depth, mut quote) = (start, 0usize, None);
    while j < b.len() {
        let c = b[j];
        if let Some(q) = quote {
            if c == b'\\' {
                j += 1;
            } else if c == q {
                quote = None;
            }
        } else {
            let next = b.get(j + 1).copied();
            match c {
                b'"' | b'\'' => quote = Some(c),
                b'{' => depth += 1,
                b'}' if !block && depth == 0 && next == Some(b'}') => return j,
                b'}' => depth = depth.saturating_sub(1),
                b'%' if block && next == Some(b'}') => return j,
                _ => {}
            }
        }
        j += 1;
    }
    b.len()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Prev {
    Dot,
    Pipe,
    Is,
    IsNot,
    Other,
}

fn scan_code(
    src: &str,
    start: usize,
    end: usize,
    f: &mut dyn FnMut(usize, &[&str]) -> bool,
) -> bool {
    let b = src.as_bytes();
    let ident_start = |c: u8| c.is_ascii_alphabetic() || c == b'_';
    let ident_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let skip_ws = |mut k: usize| {
        while k < end && b[k].is_ascii_whitespace() {
            k += 1;
        }
        k
    };
    let (mut j, mut prev) = (start, Prev::Other);
    while j < end {
        let c = b[j];
        if c.is_ascii_whitespace() {
            j += 1;
        } else if c == b'"' || c == b'\'' {
            j += 1;
            while j < end && b[j] != c {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            j += 1;
            prev = Prev::Other;
        } else if c.is_ascii_digit() {
            while j < end && (ident_char(b[j]) || b[j] == b'.') {
                j += 1;
            }
            prev = Prev::Other;
        } else if ident_start(c) {
            let chain_start = j;
            let mut chain = Vec::new();
            loop {
                let s = j;
                while j < end && ident_char(b[j]) {
                    j += 1;
                }
                chain.push(&src[s..j]);
                let k = skip_ws(j);
                if k < end && b[k] == b'.' {
                    let k = skip_ws(k + 1);
                    if k < end && ident_start(b[k]) {
                        j = k;
                        continue;
                    }
                }
                break;
            }
            let k = skip_ws(j);
            let assigned = k + 1 < end && b[k] == b'=' && b[k + 1] != b'=';
            let named =
                !assigned && !matches!(prev, Prev::Dot | Prev::Pipe | Prev::Is | Prev::IsNot);
            if named && !f(chain_start, &chain) {
                return false;
            }
            prev = match (chain.as_slice(), prev) {
                (["is"], _) => Prev::Is,
                (["not"], Prev::Is) => Prev::IsNot,
                _ => Prev::Other,
            };
        } else {
            prev = match c {
                b'.' => Prev::Dot,
                b'|' => Prev::Pipe,
                _ => Prev::Other,
            };
            j += 1;
        }
    }
    true
}

/// Optimal-string-alignment distance (edits plus adjacent transpositions).
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let width = b.len() + 1;
    let mut d: Vec<usize> = vec![0; (a.len() + 1) * width];
    for (i, row) in d.chunks_mut(width).enumerate() {
        row[0] = i;
    }
    for (j, cell) in d.iter_mut().take(width).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = v;
        }
    }
    d[a.len() * width + b.len()]
}

/// A catalog tag close to an unknown name.
fn suggest(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    if let Some(g) = GROUPS.iter().position(|group| *group == lower) {
        return TAGS.get(CATALOG.groups[g].0).map(|t| t.name);
    }
    if !lower.contains('.')
        && let Some(t) = TAGS
            .iter()
            .find(|t| t.name.rsplit('.').next() == Some(lower.as_str()))
    {
        return Some(t.name);
    }
    let limit = (lower.chars().count() / 4).max(2);
    let close = TAGS
        .iter()
        .map(|t| (distance(&lower, t.name), t.name))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, name)| name);
    // Otherwise a tag of the same group whose last segment starts the name's
    // (or the reverse): `market.zipcode` → `market.zip`.
    close.or_else(|| {
        let (group, leaf) = lower.split_once('.')?;
        TAGS.iter().map(|t| t.name).find(|name| {
            name.split_once('.').is_some_and(|(g, l)| {
                g == group
                    && l.len().min(leaf.len()) >= 3
                    && (leaf.starts_with(l) || l.starts_with(leaf))
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SUBJECT: &str =
        "{{ contact.first_name }}, {{ property.address }} is worth {{ valuation.value }}";
    const HTML: &str = r#"<body style="color:{{ org.primary_color }}">
<img src="{{ org.logo_url }}" alt="{{ org.name }}">
<p>Hi {{ contact.first_name }},</p>
<p>Your {{ market.month }} report for {{ property.full_address }}: <b>{{ valuation.value }}</b>
({{ valuation.low }} to {{ valuation.high }}, {{ valuation.change_pct }} in 12 months).</p>
{% if equity.amount %}
<p>Equity: {{ equity.amount }} ({{ equity.percent }}).</p>
{% endif %}
{% if equity.refinance_saving %}
<p>Refinancing at {{ equity.market_rate }} could save {{ equity.refinance_saving }}.</p>
{% endif %}
<p>{{ org.name }} &middot; {{ org.postal_address }} &middot; <a href="{{ links.unsubscribe }}">Unsubscribe</a></p>
</body>
"#;
    const TEXT: &str = "Hi {{ contact.first_name | default(\"neighbor\") }},

{{ property.full_address }} is worth about {{ valuation.value }} ({{ valuation.change_pct }}).
{% if equity.amount %}
Equity: {{ equity.amount }} ({{ equity.percent }})
{% endif %}
Homes in {{ market.zip }} sold for a median of {{ market.median_price }}.
Unsubscribe: {{ links.unsubscribe }}
";

    fn render_one(subject: &str, html: &str, text: &str, values: &MergeValues) -> Rendered {
        match Template::compile(subject, html, text).and_then(|t| t.render(values)) {
            Ok(r) => r,
            Err(e) => panic!("render failed: {e}"),
        }
    }

    fn compile_err(subject: &str, html: &str, text: &str) -> TemplateError {
        match Template::compile(subject, html, text) {
            Ok(_) => panic!("compiled {subject:?} / {html:?} / {text:?}"),
            Err(e) => e,
        }
    }

    fn unknown(err: &TemplateError) -> (Part, usize, &str, Option<&'static str>) {
        match err {
            TemplateError::UnknownTag {
                part,
                line,
                tag,
                suggestion,
            } => (*part, *line, tag.as_str(), *suggestion),
            other => panic!("expected an unknown tag, got {other:?}"),
        }
    }

    #[test]
    fn catalog_is_complete_and_indexed() {
        assert!(TAGS.len() >= 40);
        let mut names: Vec<&str> = TAGS.iter().map(|t| t.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TAGS.len(), "duplicate tag names");
        for (i, t) in TAGS.iter().enumerate() {
            assert!(
                !t.example.is_empty() && !t.description.is_empty(),
                "{}",
                t.name
            );
            assert_eq!(tag_index(t.name), Some(i));
            let g = group_of(t.name).and_then(|g| GROUPS.iter().position(|x| *x == g));
            match g.map(|g| CATALOG.groups[g]) {
                Some((start, end)) => assert!((start..end).contains(&i), "{}", t.name),
                None => assert_eq!(t.name, "today"),
            }
        }
        let grouped: usize = CATALOG.groups.iter().map(|(s, e)| e - s).sum();
        assert_eq!(grouped + 1, TAGS.len(), "groups are not contiguous");
        assert_eq!(
            (tag_index("contact"), tag_index("contact.nope")),
            (None, None)
        );
    }

    #[test]
    fn values_set_and_get() {
        let mut v = MergeValues::new();
        assert!(v.set("contact.first_name", "Dana"));
        assert!(!v.set("contact.frist_name", "Dana"));
        assert_eq!(v.get("contact.first_name"), Some("Dana"));
        assert_eq!(v.get("contact.last_name"), None);
        assert!(v.set("contact.first_name", ""));
        assert_eq!(v.get("contact.first_name"), None);
        v.set_index(TAGS.len() + 5, "ignored".into());
        v.set_index(TAGS.len() - 1, "October 14, 2026".into());
        assert_eq!(v.get("today"), Some("October 14, 2026"));
        assert_eq!(MergeValues::examples().get("equity.percent"), Some("42%"));
    }

    #[test]
    fn renders_realistic_template_exactly() {
        let mut v = MergeValues::examples();
        v.set("equity.refinance_saving", "");
        let r = render_one(SUBJECT, HTML, TEXT, &v);
        assert_eq!(r.subject, "Dana, 123 Oak St is worth $412,300");
        let html = r#"<body style="color:#0b7a4b">
<img src="https://cdn.example.com/prairie/logo.png" alt="Prairie Home Realty">
<p>Hi Dana,</p>
<p>Your October 2026 report for 123 Oak St, Ames, IA 50010: <b>$412,300</b>
($391,700 to $432,900, +4.2% in 12 months).</p>
<p>Equity: $173,800 (42%).</p>
<p>Prairie Home Realty &middot; 500 Main St, Ames, IA 50010 &middot; <a href="https://prairiehome.example.com/u/k3x9">Unsubscribe</a></p>
</body>"#;
        assert_eq!(r.html, html);
        let text = "Hi Dana,

123 Oak St, Ames, IA 50010 is worth about $412,300 (+4.2%).
Equity: $173,800 (42%)
Homes in 50010 sold for a median of $389,000.
Unsubscribe: https://prairiehome.example.com/u/k3x9";
        assert_eq!(r.text, text);
    }

    #[test]
    fn fallbacks_apply_to_missing_and_empty_values() {
        let t = "{{ contact.first_name }}|{{ contact.full_name }}|{{ contact.last_name }}|\
                 {{ org.primary_color }}|{{ property.property_type }}|{{ today }}";
        let mut v = MergeValues::new();
        assert_eq!(
            render_one(t, "", "", &v).subject,
            "there|Homeowner||#1f6feb|home|"
        );
        v.set("contact.first_name", "");
        v.set("org.primary_color", "#123456");
        v.set("today", "May 1, 2026");
        let r = render_one(t, "", "", &v);
        assert_eq!(r.subject, "there|Homeowner||#123456|home|May 1, 2026");
    }

    #[test]
    fn default_and_conditions_see_missing_tags() {
        let t = "{{ contact.first_name | default(\"friend\") }}|{{ contact.first_name | d(\"pal\") }}|\
                 {% if contact.first_name %}y{% else %}n{% endif %}|{{ contact.first_name is defined }}|\
                 {{ contact.first_name | upper }}|{{ \"Hi \" ~ contact.first_name }}|\
                 {{ contact.first_name | length }}{{ contact.first_name | first }}\
                 {{ contact.first_name | last }}{{ contact.first_name | reverse }}";
        let mut v = MergeValues::new();
        assert_eq!(
            render_one(t, "", "", &v).subject,
            "friend|pal|n|False|THERE|Hi there|5teereht"
        );
        v.set("contact.first_name", "Dana");
        assert_eq!(
            render_one(t, "", "", &v).subject,
            "Dana|Dana|y|True|DANA|Hi Dana|4DaanaD"
        );
    }

    #[test]
    fn html_part_escapes_and_others_do_not() {
        let mut v = MergeValues::new();
        v.set("contact.first_name", "<script>alert('x')</script> & \"co\"");
        let t = "Hi {{ contact.first_name }}";
        let r = render_one(t, t, t, &v);
        assert_eq!(r.subject, "Hi <script>alert('x')</script> & \"co\"");
        assert_eq!(r.text, r.subject);
        assert_eq!(
            r.html,
            "Hi &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;co&quot;"
        );
        let r = render_one(
            "s",
            "{{ contact.first_name | upper }}|{{ '<i>' | safe }}",
            "",
            &v,
        );
        assert_eq!(
            r.html,
            "&lt;SCRIPT&gt;ALERT(&#39;X&#39;)&lt;/SCRIPT&gt; &amp; &quot;CO&quot;|<i>"
        );
    }

    #[test]
    fn unknown_tag_reports_part_line_and_suggestion() {
        let html = "<p>Hello</p>\n<p>{{ org.name }}</p>\n<p>Hi {{ contact.frist_name }}</p>\n";
        let err = compile_err("Subject", html, "");
        let expected = (
            Part::Html,
            3,
            "contact.frist_name",
            Some("contact.first_name"),
        );
        assert_eq!(unknown(&err), expected);
        let msg = err.to_string();
        for needle in [
            "`contact.frist_name`",
            "html part",
            "line 3",
            "did you mean `contact.first_name`",
        ] {
            assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
        }
        let err = compile_err("x", "", "a\n{{ \"agnet.name\" }}\n{{ agnet.name }}");
        assert_eq!(
            unknown(&err),
            (Part::Text, 3, "agnet.name", Some("agent.name"))
        );
        assert_eq!(
            unknown(&compile_err("{{ foo }}", "", "")),
            (Part::Subject, 1, "foo", None)
        );
        let err = compile_err("s", "", "\n{{ contact }}");
        assert_eq!(
            unknown(&err),
            (Part::Text, 2, "contact", Some("contact.first_name"))
        );
        assert!(err.to_string().contains("a group, not a tag"));
        assert_eq!(
            unknown(&compile_err("{{ first_name }}", "", "")).3,
            Some("contact.first_name")
        );
        assert_eq!(
            unknown(&compile_err("{{ today.year }}", "", "")).2,
            "today.year"
        );
        assert_eq!(
            unknown(&compile_err("s", "{{ contact['first_name'] }}", "")).2,
            "contact"
        );
        // The first by position is reported.
        assert_eq!(
            unknown(&compile_err("s", "{{ x.y }}\n{{ a.b }}", "")),
            (Part::Html, 1, "x.y", None)
        );
    }

    #[test]
    fn unknown_tags_are_found_in_branches_and_arguments() {
        let err = compile_err(
            "s",
            "a\n{% if false %}\n  {{ valuation.valeu }}\n{% endif %}",
            "",
        );
        let expected = (Part::Html, 3, "valuation.valeu", Some("valuation.value"));
        assert_eq!(unknown(&err), expected);
        let err = compile_err(
            "s",
            "",
            "x\n{{ contact.first_name | default(contact.nick) }}",
        );
        assert_eq!(unknown(&err), (Part::Text, 2, "contact.nick", None));
        let err = compile_err(
            "s",
            "",
            "{% if contact.first_name == market.zipcode %}{% endif %}",
        );
        assert_eq!(
            unknown(&err),
            (Part::Text, 1, "market.zipcode", Some("market.zip"))
        );
    }

    #[test]
    fn template_locals_and_globals_are_not_reported() {
        let html = "{% set greeting = 'Hi ' ~ contact.first_name %}{{ greeting }}\n\
            {% for n in range(2) %}{{ n }}{{ loop.index }}{% endfor %}\n\
            {% for k, v in [('a', 1)] %}{{ k }}{{ v }}{% endfor %}\n\
            {% macro row(label, value='') %}{{ label }}={{ value }}{% endmacro %}\
            {{ row('Value', valuation.value) }}\n\
            {% with z = agent.name %}{{ z }}{% endwith %}\
            {% raw %}{{ not_a_tag }}{% endraw %}{# {{ nor_this }} #}";
        let r = render_one("s", html, "", &MergeValues::examples());
        assert_eq!(
            r.html,
            "Hi Dana\n0112a1Value=$412,300\nJordan Ellis{{ not_a_tag }}"
        );
    }

    #[test]
    fn syntax_errors_report_part_and_line() {
        let err = compile_err("s", "", "line one\nHi {{ contact.first_name | }}\n");
        assert!(
            matches!(
                err,
                TemplateError::Syntax {
                    part: Part::Text,
                    line: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("syntax error in text part, line 2: syntax error")
        );
        let err = compile_err("{% if x %}", "", "");
        assert!(matches!(
            err,
            TemplateError::Syntax {
                part: Part::Subject,
                line: 1,
                ..
            }
        ));
    }

    #[test]
    fn limits_and_render_errors() {
        assert_eq!(compile_err(" \n", "", ""), TemplateError::EmptySubject);
        let err = compile_err("s", &"x".repeat(MAX_PART_BYTES + 1), "");
        assert!(matches!(
            err,
            TemplateError::TooLarge {
                part: Part::Html,
                ..
            }
        ));
        let err = compile_err("s", "", "ok\n{{ contact.first_name | int }}");
        assert!(matches!(
            err,
            TemplateError::Render {
                part: Part::Text,
                line: Some(2),
                ..
            }
        ));
        assert!(
            err.to_string()
                .starts_with("cannot render text part, line 2: "),
            "{err}"
        );
    }

    #[test]
    fn templates_are_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Template>();
        assert_send_sync::<MergeValues>();
        let t = Arc::new(Template::compile("{{ contact.first_name }}", "", "").ok());
        let handles: Vec<_> = ["Ann", "Bo"]
            .map(|name| {
                let t = Arc::clone(&t);
                std::thread::spawn(move || {
                    let mut v = MergeValues::new();
                    v.set("contact.first_name", name);
                    t.as_ref()
                        .as_ref()
                        .and_then(|t| t.render(&v).ok())
                        .map(|r| r.subject)
                })
            })
            .into_iter()
            .collect();
        let got: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().ok().flatten())
            .collect();
        assert_eq!(got, [Some("Ann".to_owned()), Some("Bo".to_owned())]);
    }

    #[test]
    fn formatting_helpers() {
        assert_eq!(money(412_300.4), "$412,300");
        assert_eq!(money(412_300.5), "$412,301");
        assert_eq!(money(-1_200.0), "-$1,200");
        assert_eq!((money(-0.4), money(999.5)), ("$0".into(), "$1,000".into()));
        assert_eq!(money(1_234_567_890.0), "$1,234,567,890");
        assert_eq!(money(f64::NAN), "");
        assert_eq!((count(1_850.0), count(48.0)), ("1,850".into(), "48".into()));
        assert_eq!(count(-12_345.0), "-12,345");
        assert_eq!(
            (percent(42.15, 0), percent(6.25, 2)),
            ("42%".into(), "6.25%".into())
        );
        assert_eq!(percent(-0.2, 0), "0%");
        assert_eq!(
            (signed_percent(4.2), signed_percent(-0.8)),
            ("+4.2%".into(), "-0.8%".into())
        );
        assert_eq!(
            (signed_percent(0.01), signed_percent(-0.01)),
            ("0.0%".into(), "0.0%".into())
        );
        assert_eq!(long_date(2019, 3, 3), "March 3, 2019");
        assert_eq!(
            (long_date(2019, 13, 3), long_date(2019, 0, 3)),
            (String::new(), String::new())
        );
        assert_eq!(
            (month_year(2026, 10), month_year(2026, 12)),
            ("October 2026".into(), "December 2026".into())
        );
    }

    proptest! {
        #[test]
        fn money_groups_whole_dollars(n in -10_000_000_000_000i64..10_000_000_000_000) {
            let s = money(n as f64);
            let body = s.trim_start_matches('-').trim_start_matches('$');
            prop_assert_eq!(s.starts_with('-'), n < 0);
            prop_assert_eq!(body.replace(',', ""), n.unsigned_abs().to_string());
            let groups: Vec<&str> = body.split(',').collect();
            prop_assert!(!groups[0].is_empty() && groups[0].len() <= 3);
            prop_assert!(groups[1..].iter().all(|g| g.len() == 3));
        }
    }
}
