//! # Campaign segments: the rule language
//!
//! A segment picks out some of an organization's contacts (homeowners) with a short rule:
//!
//! ```text
//! equity_pct > 40 and tenure_years >= 5 and zip in ("50010", "50014")
//!     and score.refinance >= 0.6
//! ```
//!
//! [`Rule::parse`] reads and type-checks a rule; [`Rule::compile`] turns it into a SQL
//! `WHERE` fragment in which every value is a bound parameter (`$n`), never spliced text.
//! The same SQL runs on SQLite and PostgreSQL.
//!
//! ## Grammar
//!
//! ```text
//! rule       := or
//! or         := and ("or" and)*
//! and        := unary ("and" unary)*
//! unary      := "not" unary | "(" rule ")" | predicate
//! predicate  := field op literal
//!             | field ["not"] "in" "(" literal ("," literal)* ")"
//!             | field "is" ["not"] "null"
//! op         := "=" | "!=" | "<>" | "<" | "<=" | ">" | ">="
//! literal    := number | string | "true" | "false"
//! field      := ident | ident "." ident
//! ident      := [A-Za-z_][A-Za-z0-9_]*
//! ```
//!
//! - `not` binds tighter than `and`, which binds tighter than `or`:
//!   `a or b and c` means `a or (b and c)`, and `not a and b` means `(not a) and b`.
//! - Keywords (`and or not in is null true false`) are case-insensitive; field names are not.
//! - Spaces, tabs and line breaks may appear anywhere between tokens; a rule may span lines.
//!   A qualified name is written without spaces around its dot (`score.refinance`).
//! - Numbers: an optional `-`, digits, an optional fraction and exponent: `40`, `0.6`, `-3`,
//!   `1e3`, `2.5E-1`.
//! - Strings: in double or single quotes, with the escapes `\"`, `\'` and `\\`.
//!
//! ## Types and operators
//!
//! | field type | operators                                               | literals          |
//! |------------|---------------------------------------------------------|-------------------|
//! | number     | `= != <> < <= > >=`, `in`, `not in`, `is [not] null`    | numbers           |
//! | text       | `= != <>`, `in`, `not in`, `is [not] null`              | strings in quotes |
//!
//! `!=` and `<>` mean the same. Text comparisons ignore the case of ASCII letters
//! (`city = "ames"` matches `Ames`). `consent` and `property_type` only take the values listed
//! below. `true` and `false` are reserved for boolean fields; none exists yet.
//!
//! ## Fields
//!
//! The catalog is [`FIELDS`]. Text: `email`, `first_name`, `last_name`, `consent`
//! (`subscribed`, `unsubscribed`, `bounced`, `complained`), `city`, `state`, `zip`,
//! `property_type` (`single_family`, `townhouse`, `condo`, `multi_family`), `agent_email`.
//!
//! Numbers: `beds`, `baths`, `sqft`, `year_built`, `value` (estimated home value, $),
//! `value_low`, `value_high`, `equity` ($), `equity_pct` (%), `ltv` (%), `loan_balance` ($),
//! `loan_rate_pct` (%), `market_rate_pct` (%), `refinance_saving` ($/month), `cash_out` ($),
//! `market_median_price` ($), `market_median_ppsf` ($/sqft), `market_yoy_pct` (%),
//! `market_sales` (sales in the zip last month), and the derived `tenure_years` (years since
//! the purchase closed), `property_age_years` (this year minus `year_built`) and `rate_spread`
//! (`loan_rate_pct - market_rate_pct`, percentage points).
//!
//! `feature.<name>` and `score.<name>` are per-contact numbers kept by the models, such as
//! `feature.valuation_views_7d` or `score.refinance` (table `contact_values`, one row per
//! organization, contact and name); which ones exist depends on the organization, and naming
//! one that does not exist is an error.
//!
//! ## Missing values
//!
//! Any field may be missing for a contact. A comparison with a missing value is never true,
//! and neither is its negation: `not (equity_pct > 40)` does not match contacts without an
//! `equity_pct`, and `zip not in ("50010")` does not match contacts without a zip.
//! `equity_pct is null` finds them; `equity_pct is not null` excludes them.
//!
//! ## Limits
//!
//! A rule has at most [`MAX_RULE_CHARS`] characters, nests `not` and parentheses at most
//! [`MAX_DEPTH`] deep, has at most [`MAX_PREDICATES`] conditions and at most
//! [`MAX_IN_VALUES`] values in one `in` list, and uses at most [`MAX_QUALIFIED`] different
//! `feature.`/`score.` fields.
//!
//! ## Errors
//!
//! A [`SegmentError`] says what is wrong and where (1-based line, and column counted in
//! characters):
//! `line 1, column 15: unknown field "equty_pct" (did you mean "equity_pct"?)`.
//!
//! ## Compiled SQL
//!
//! Contacts are the table `contacts` aliased `c`. [`Compiled::joins`] holds one
//! `LEFT JOIN contact_values vN` per `feature.`/`score.` field (to place after
//! `FROM contacts c`), [`Compiled::condition`] the parenthesised condition, and
//! [`Compiled::binds`] the values for the placeholders, numbered consecutively from the
//! `first_placeholder` given to [`Rule::compile`] in the order they appear in the joins and
//! then the condition.

use std::collections::BTreeSet;
use std::fmt::Write as _;

/// Longest rule accepted, in characters.
pub const MAX_RULE_CHARS: usize = 4000;
/// Deepest nesting of `not` and parentheses.
pub const MAX_DEPTH: usize = 32;
/// Most values in one `in` list.
pub const MAX_IN_VALUES: usize = 1000;
/// Most different `feature.`/`score.` fields in one rule.
pub const MAX_QUALIFIED: usize = 16;
/// Most conditions (predicates) in one rule.
pub const MAX_PREDICATES: usize = 200;

/// The qualifiers of per-contact model values stored in `contact_values`.
const QUALIFIERS: [&str; 2] = ["feature", "score"];

/// The type of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// A number (SQL `DOUBLE PRECISION`).
    Number,
    /// A string, compared ignoring ASCII case.
    Text,
}

impl FieldType {
    /// The type's name as users read it: `number` or `text`.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Number => "number",
            FieldType::Text => "text",
        }
    }

    fn expected(self) -> &'static str {
        match self {
            FieldType::Number => "a number",
            FieldType::Text => "text in quotes",
        }
    }
}

/// A field a rule can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// The name used in rules.
    pub name: &'static str,
    /// Its type.
    pub kind: FieldType,
    /// What it holds, for people writing rules.
    pub description: &'static str,
    /// Its unit (`$`, `%`, `years`, …), or `""`.
    pub unit: &'static str,
    /// The only values a text field may be compared with, or empty when any value is allowed.
    pub values: &'static [&'static str],
}

const CONSENT_VALUES: &[&str] = &["subscribed", "unsubscribed", "bounced", "complained"];
const PROPERTY_TYPES: &[&str] = &["single_family", "townhouse", "condo", "multi_family"];

const fn text(name: &'static str, description: &'static str) -> Field {
    Field {
        name,
        kind: FieldType::Text,
        description,
        unit: "",
        values: &[],
    }
}

const fn number(name: &'static str, description: &'static str, unit: &'static str) -> Field {
    Field {
        name,
        kind: FieldType::Number,
        description,
        unit,
        values: &[],
    }
}

/// The fields every organization has (the qualified `feature.`/`score.` fields come on top).
pub static FIELDS: &[Field] = &[
    text("email", "Contact email address"),
    text("first_name", "Contact first name"),
    text("last_name", "Contact last name"),
    Field {
        name: "consent",
        kind: FieldType::Text,
        description: "Email consent status",
        unit: "",
        values: CONSENT_VALUES,
    },
    text("city", "City of the home"),
    text("state", "State of the home"),
    text("zip", "ZIP code of the home"),
    Field {
        name: "property_type",
        kind: FieldType::Text,
        description: "Kind of home",
        unit: "",
        values: PROPERTY_TYPES,
    },
    text("agent_email", "Email of the contact's agent"),
    number("beds", "Bedrooms", ""),
    number("baths", "Bathrooms", ""),
    number("sqft", "Living area", "sqft"),
    number("year_built", "Year the home was built", ""),
    number("value", "Estimated home value", "$"),
    number("value_low", "Low end of the value estimate", "$"),
    number("value_high", "High end of the value estimate", "$"),
    number("equity", "Estimated equity: value minus loan balance", "$"),
    number("equity_pct", "Equity as a percentage of value (0-100)", "%"),
    number("ltv", "Loan balance as a percentage of value (0-100)", "%"),
    number("loan_balance", "Estimated remaining loan balance", "$"),
    number("loan_rate_pct", "Interest rate of the current loan", "%"),
    number("market_rate_pct", "Current market mortgage rate", "%"),
    number(
        "refinance_saving",
        "Monthly saving when refinancing at market rate",
        "$/month",
    ),
    number("cash_out", "Cash available from a cash-out refinance", "$"),
    number(
        "market_median_price",
        "Median sale price in the zip last month",
        "$",
    ),
    number(
        "market_median_ppsf",
        "Median price per sqft in the zip last month",
        "$/sqft",
    ),
    number(
        "market_yoy_pct",
        "Year-over-year change of the zip's median price",
        "%",
    ),
    number(
        "market_sales",
        "Number of sales in the zip last month",
        "sales",
    ),
    number("tenure_years", "Years since the purchase closed", "years"),
    number(
        "property_age_years",
        "Years since the home was built",
        "years",
    ),
    number(
        "rate_spread",
        "Loan rate minus market rate",
        "percentage points",
    ),
];

/// The catalog entry of a bare field name.
pub fn find_field(name: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.name == name)
}

/// What kind of mistake a [`SegmentError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The text does not follow the grammar.
    Syntax,
    /// A field name that does not exist.
    UnknownField,
    /// An operator or value of the wrong type for its field.
    Type,
    /// A value outside what its field allows (closed value sets, non-finite numbers).
    Value,
    /// A size limit exceeded.
    Limit,
}

/// Why a rule could not be parsed or compiled, with the position of the offending token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text}")]
pub struct SegmentError {
    kind: ErrorKind,
    text: String,
    line: usize,
    column: usize,
}

impl SegmentError {
    fn at(kind: ErrorKind, pos: Pos, message: impl std::fmt::Display) -> Self {
        let text = format!("line {}, column {}: {message}", pos.line, pos.column);
        SegmentError {
            kind,
            text,
            line: pos.line,
            column: pos.column,
        }
    }

    fn unlocated(kind: ErrorKind, pos: Pos, text: String) -> Self {
        SegmentError {
            kind,
            text,
            line: pos.line,
            column: pos.column,
        }
    }

    /// What kind of mistake this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// 1-based line of the offending token (for a rule that ends too early: just past its end).
    pub fn line(&self) -> usize {
        self.line
    }

    /// 1-based column, in characters, of the offending token.
    pub fn column(&self) -> usize {
        self.column
    }

    /// `(line, column)`, both 1-based.
    pub fn position(&self) -> (usize, usize) {
        (self.line, self.column)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    line: usize,
    column: usize,
}

const START: Pos = Pos { line: 1, column: 1 };

// ---------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kw {
    And,
    Or,
    Not,
    In,
    Is,
    Null,
    True,
    False,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn sql(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Kw(Kw),
    Num(f64),
    Str(String),
    Op(CmpOp),
    LParen,
    RParen,
    Comma,
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    tok: Tok,
    pos: Pos,
    raw: String,
}

impl Token {
    /// The token as quoted in messages.
    fn describe(&self) -> String {
        let raw = shorten(&self.raw);
        match self.tok {
            Tok::Str(_) => format!("the text {raw}"),
            _ => format!("\"{raw}\""),
        }
    }
}

fn shorten(raw: &str) -> String {
    if raw.chars().count() > 40 {
        format!("{}...", raw.chars().take(37).collect::<String>())
    } else {
        raw.to_string()
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

struct Lexer {
    chars: Vec<char>,
    i: usize,
    pos: Pos,
}

impl Lexer {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.i + ahead).copied()
    }

    fn peek_is(&self, ahead: usize, f: impl Fn(char) -> bool) -> bool {
        self.peek(ahead).is_some_and(f)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.i += 1;
        if c == '\n' {
            self.pos = Pos {
                line: self.pos.line + 1,
                column: 1,
            };
        } else {
            self.pos.column += 1;
        }
        Some(c)
    }

    fn bump_while(&mut self, f: impl Fn(char) -> bool) {
        while self.peek_is(0, &f) {
            self.bump();
        }
    }

    fn since(&self, from: usize) -> String {
        self.chars
            .get(from..self.i)
            .map(|s| s.iter().collect())
            .unwrap_or_default()
    }

    fn next_token(&mut self) -> Result<Option<Token>, SegmentError> {
        self.bump_while(char::is_whitespace);
        let (start, from) = (self.pos, self.i);
        let Some(c) = self.peek(0) else {
            return Ok(None);
        };
        let two = |lexer: &mut Lexer, op: CmpOp| {
            lexer.bump();
            lexer.bump();
            Tok::Op(op)
        };
        let tok = match (c, self.peek(1)) {
            ('(' | ')' | ',' | '=', _) => {
                self.bump();
                match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    ',' => Tok::Comma,
                    _ => Tok::Op(CmpOp::Eq),
                }
            }
            ('!', Some('=')) => two(self, CmpOp::Ne),
            ('<', Some('=')) => two(self, CmpOp::Le),
            ('<', Some('>')) => two(self, CmpOp::Ne),
            ('>', Some('=')) => two(self, CmpOp::Ge),
            ('<' | '>', _) => {
                self.bump();
                Tok::Op(if c == '<' { CmpOp::Lt } else { CmpOp::Gt })
            }
            ('"' | '\'', _) => self.string(start)?,
            ('-', Some(d)) if d.is_ascii_digit() => self.number(start, from)?,
            (d, _) if d.is_ascii_digit() => self.number(start, from)?,
            (w, _) if is_ident_start(w) => self.word(),
            ('!', _) => {
                let message = "unexpected \"!\" (use \"!=\" for \"not equal\")";
                return Err(SegmentError::at(ErrorKind::Syntax, start, message));
            }
            (other, _) => {
                let message = format!("unexpected character \"{other}\"");
                return Err(SegmentError::at(ErrorKind::Syntax, start, message));
            }
        };
        Ok(Some(Token {
            tok,
            pos: start,
            raw: self.since(from),
        }))
    }

    fn word(&mut self) -> Tok {
        let from = self.i;
        self.bump_while(is_ident_char);
        if self.peek(0) == Some('.') && self.peek_is(1, is_ident_start) {
            self.bump();
            self.bump_while(is_ident_char);
            return Tok::Word(self.since(from));
        }
        let word = self.since(from);
        let kw = match word.to_ascii_lowercase().as_str() {
            "and" => Kw::And,
            "or" => Kw::Or,
            "not" => Kw::Not,
            "in" => Kw::In,
            "is" => Kw::Is,
            "null" => Kw::Null,
            "true" => Kw::True,
            "false" => Kw::False,
            _ => return Tok::Word(word),
        };
        Tok::Kw(kw)
    }

    fn number(&mut self, start: Pos, from: usize) -> Result<Tok, SegmentError> {
        let digit = |c: char| c.is_ascii_digit();
        if self.peek(0) == Some('-') {
            self.bump();
        }
        self.bump_while(digit);
        if self.peek(0) == Some('.') && self.peek_is(1, digit) {
            self.bump();
            self.bump_while(digit);
        }
        if matches!(self.peek(0), Some('e' | 'E')) {
            let sign = usize::from(matches!(self.peek(1), Some('+' | '-')));
            if self.peek_is(1 + sign, digit) {
                for _ in 0..=sign {
                    self.bump();
                }
                self.bump_while(digit);
            }
        }
        if self.peek_is(0, |c| is_ident_char(c) || c == '.') {
            self.bump_while(|c| is_ident_char(c) || c == '.');
            let message = format!("invalid number \"{}\"", shorten(&self.since(from)));
            return Err(SegmentError::at(ErrorKind::Syntax, start, message));
        }
        let raw = self.since(from);
        match raw.parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(Tok::Num(value)),
            Ok(_) => {
                let message = format!("number \"{}\" is out of range", shorten(&raw));
                Err(SegmentError::at(ErrorKind::Value, start, message))
            }
            Err(_) => {
                let message = format!("invalid number \"{}\"", shorten(&raw));
                Err(SegmentError::at(ErrorKind::Syntax, start, message))
            }
        }
    }

    fn string(&mut self, start: Pos) -> Result<Tok, SegmentError> {
        let quote = self.bump();
        let unclosed = || {
            let message = "text in quotes is never closed";
            SegmentError::at(ErrorKind::Syntax, start, message)
        };
        let mut out = String::new();
        loop {
            let here = self.pos;
            match self.bump() {
                None => return Err(unclosed()),
                Some('\\') => match self.bump() {
                    Some(c @ ('"' | '\'' | '\\')) => out.push(c),
                    Some(c) => {
                        let message = format!(
                            "unknown escape \"\\{c}\" (only \\\", \\' and \\\\ are allowed)"
                        );
                        return Err(SegmentError::at(ErrorKind::Syntax, here, message));
                    }
                    None => return Err(unclosed()),
                },
                Some(c) if Some(c) == quote => return Ok(Tok::Str(out)),
                Some(c) => out.push(c),
            }
        }
    }
}

/// All tokens up to the first lexical error, then where the text ends (just past the last
/// token) or that error.
fn lex(text: &str) -> (Vec<Token>, Result<Pos, SegmentError>) {
    let mut lexer = Lexer {
        chars: text.chars().collect(),
        i: 0,
        pos: START,
    };
    let mut tokens = Vec::new();
    let mut end = START;
    loop {
        match lexer.next_token() {
            Ok(Some(token)) => {
                end = lexer.pos;
                tokens.push(token);
            }
            Ok(None) => return (tokens, Ok(end)),
            Err(e) => return (tokens, Err(e)),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Syntax tree and parser

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Pred(Pred),
}

#[derive(Debug, Clone, PartialEq)]
struct Pred {
    field: FieldRef,
    test: Test,
}

#[derive(Debug, Clone, PartialEq)]
enum FieldRef {
    Bare(&'static Field),
    Qualified(String),
}

impl FieldRef {
    fn kind(&self) -> FieldType {
        match self {
            FieldRef::Bare(f) => f.kind,
            FieldRef::Qualified(_) => FieldType::Number,
        }
    }

    fn name(&self) -> &str {
        match self {
            FieldRef::Bare(f) => f.name,
            FieldRef::Qualified(name) => name,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Test {
    Cmp(CmpOp, Bind),
    In { negated: bool, values: Vec<Bind> },
    Null { negated: bool },
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    end: Result<Pos, SegmentError>,
    predicates: usize,
    qualified: Vec<(String, Pos)>,
}

impl Parser {
    /// The next token; `None` at the end; the lexical error if the text breaks off there.
    fn peek(&self) -> Result<Option<&Token>, SegmentError> {
        match (self.tokens.get(self.next), &self.end) {
            (Some(token), _) => Ok(Some(token)),
            (None, Ok(_)) => Ok(None),
            (None, Err(e)) => Err(e.clone()),
        }
    }

    fn eat(&mut self, want: &Tok) -> bool {
        let found = self.tokens.get(self.next).is_some_and(|t| t.tok == *want);
        if found {
            self.next += 1;
        }
        found
    }

    /// `what`, followed by ` after "<previous token>"` when there is one.
    fn after(&self, what: &str) -> String {
        match self.next.checked_sub(1).and_then(|i| self.tokens.get(i)) {
            Some(prev) => format!("{what} after {}", prev.describe()),
            None => what.to_string(),
        }
    }

    /// The error for finding something other than `expected` at the current token.
    fn unexpected(&self, expected: &str) -> SegmentError {
        match (self.tokens.get(self.next), &self.end) {
            (Some(t), _) => {
                let message = format!("{expected}, found {}", t.describe());
                SegmentError::at(ErrorKind::Syntax, t.pos, message)
            }
            (None, Ok(pos)) => SegmentError::unlocated(
                ErrorKind::Syntax,
                *pos,
                format!("unexpected end of rule: {expected}"),
            ),
            (None, Err(e)) => e.clone(),
        }
    }

    fn or(&mut self, depth: usize) -> Result<Expr, SegmentError> {
        let first = self.and(depth)?;
        if !self.eat(&Tok::Kw(Kw::Or)) {
            return Ok(first);
        }
        let mut items = vec![first, self.and(depth)?];
        while self.eat(&Tok::Kw(Kw::Or)) {
            items.push(self.and(depth)?);
        }
        Ok(Expr::Or(items))
    }

    fn and(&mut self, depth: usize) -> Result<Expr, SegmentError> {
        let first = self.unary(depth)?;
        if !self.eat(&Tok::Kw(Kw::And)) {
            return Ok(first);
        }
        let mut items = vec![first, self.unary(depth)?];
        while self.eat(&Tok::Kw(Kw::And)) {
            items.push(self.unary(depth)?);
        }
        Ok(Expr::And(items))
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, SegmentError> {
        let (is_not, pos) = match self.peek()?.map(|t| (&t.tok, t.pos)) {
            Some((Tok::Kw(Kw::Not), pos)) => (true, pos),
            Some((Tok::LParen, pos)) => (false, pos),
            _ => return self.predicate(),
        };
        if depth >= MAX_DEPTH {
            let message = format!("\"not\" and parentheses nest more than {MAX_DEPTH} deep");
            return Err(SegmentError::at(ErrorKind::Limit, pos, message));
        }
        self.next += 1;
        if is_not {
            return Ok(Expr::Not(Box::new(self.unary(depth + 1)?)));
        }
        let inner = self.or(depth + 1)?;
        if !self.eat(&Tok::RParen) {
            let expected = format!(
                "expected \")\" to close the \"(\" at line {}, column {}",
                pos.line, pos.column
            );
            return Err(self.unexpected(&expected));
        }
        Ok(inner)
    }

    fn predicate(&mut self) -> Result<Expr, SegmentError> {
        let (name, pos) = match self.peek()?.map(|t| (&t.tok, t.pos)) {
            Some((Tok::Word(w), pos)) => (w.clone(), pos),
            _ => return Err(self.unexpected(&self.after("expected a condition"))),
        };
        self.predicates += 1;
        if self.predicates > MAX_PREDICATES {
            let message = format!("a rule may have at most {MAX_PREDICATES} conditions");
            return Err(SegmentError::at(ErrorKind::Limit, pos, message));
        }
        let field = self.resolve(&name, pos)?;
        self.next += 1;
        let op = match self.tokens.get(self.next).map(|t| (&t.tok, t.pos, &t.raw)) {
            Some((Tok::Op(op), pos, raw)) => Some((*op, pos, raw.clone())),
            _ => None,
        };
        let test = if let Some((op, op_pos, raw)) = op {
            self.next += 1;
            let ordering = matches!(op, CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge);
            if ordering && field.kind() == FieldType::Text {
                let message = format!("\"{name}\" is text; \"{raw}\" needs a number field");
                return Err(SegmentError::at(ErrorKind::Type, op_pos, message));
            }
            let expected = format!("expected a value after \"{raw}\"");
            Test::Cmp(op, self.literal(&field, &expected)?)
        } else if self.eat(&Tok::Kw(Kw::In)) {
            self.in_list(&field, false)?
        } else if self.eat(&Tok::Kw(Kw::Not)) {
            if !self.eat(&Tok::Kw(Kw::In)) {
                return Err(self.unexpected("expected \"in\" after \"not\""));
            }
            self.in_list(&field, true)?
        } else if self.eat(&Tok::Kw(Kw::Is)) {
            let negated = self.eat(&Tok::Kw(Kw::Not));
            if !self.eat(&Tok::Kw(Kw::Null)) {
                return Err(self.unexpected(&self.after("expected \"null\"")));
            }
            Test::Null { negated }
        } else {
            let expected = format!("expected an operator after field \"{name}\"");
            return Err(self.unexpected(&expected));
        };
        Ok(Expr::Pred(Pred { field, test }))
    }

    /// The values of an `in` list; the `in` has been read.
    fn in_list(&mut self, field: &FieldRef, negated: bool) -> Result<Test, SegmentError> {
        if !self.eat(&Tok::LParen) {
            return Err(self.unexpected("expected \"(\" after \"in\""));
        }
        let mut values = Vec::new();
        loop {
            let pos = self.tokens.get(self.next).map_or(START, |t| t.pos);
            values.push(self.literal(field, &self.after("expected a value"))?);
            if values.len() > MAX_IN_VALUES {
                let message = format!("an \"in\" list may have at most {MAX_IN_VALUES} values");
                return Err(SegmentError::at(ErrorKind::Limit, pos, message));
            }
            if self.eat(&Tok::RParen) {
                return Ok(Test::In { negated, values });
            }
            if !self.eat(&Tok::Comma) {
                return Err(self.unexpected("expected \",\" or \")\" after a value in the list"));
            }
        }
    }

    /// A literal for `field`, checked against its type and allowed values.
    fn literal(&mut self, field: &FieldRef, expected: &str) -> Result<Bind, SegmentError> {
        let Some(token) = self.peek()? else {
            return Err(self.unexpected(expected));
        };
        let (name, kind, pos) = (field.name(), field.kind(), token.pos);
        let found = match &token.tok {
            Tok::Num(v) if kind == FieldType::Number => Some(Bind::Number(*v)),
            Tok::Str(s) if kind == FieldType::Text => Some(Bind::Text(s.clone())),
            Tok::Num(_) => None,
            Tok::Str(_) => None,
            Tok::Kw(Kw::True | Kw::False) => None,
            Tok::Kw(Kw::Null) => {
                let message = format!(
                    "a missing value is tested with \"{name} is null\" or \"{name} is not null\""
                );
                return Err(SegmentError::at(ErrorKind::Syntax, pos, message));
            }
            _ => return Err(self.unexpected(expected)),
        };
        let Some(value) = found else {
            let literal = match &token.tok {
                Tok::Num(_) => format!("the number {}", shorten(&token.raw)),
                Tok::Str(_) => format!("the text {}", shorten(&token.raw)),
                _ => token.raw.to_ascii_lowercase(),
            };
            let message = format!(
                "\"{name}\" is a {} field; expected {}, found {literal}",
                kind.as_str(),
                kind.expected()
            );
            return Err(SegmentError::at(ErrorKind::Type, pos, message));
        };
        if let (FieldRef::Bare(f), Bind::Text(s)) = (field, &value)
            && !f.values.is_empty()
            && !f.values.iter().any(|v| v.eq_ignore_ascii_case(s))
        {
            let (values, s) = (f.values.join(", "), shorten(s));
            let message = format!("\"{name}\" must be one of {values}; found \"{s}\"");
            return Err(SegmentError::at(ErrorKind::Value, pos, message));
        }
        self.next += 1;
        Ok(value)
    }

    fn resolve(&mut self, name: &str, pos: Pos) -> Result<FieldRef, SegmentError> {
        let Some((qualifier, rest)) = name.split_once('.') else {
            return find_field(name).map(FieldRef::Bare).ok_or_else(|| {
                let names = suggest(name, FIELDS.iter().map(|f| f.name));
                let message = format!("unknown field \"{name}\"{}", did_you_mean(&names));
                SegmentError::at(ErrorKind::UnknownField, pos, message)
            });
        };
        if !QUALIFIERS.contains(&qualifier) {
            let guesses: Vec<String> = QUALIFIERS.iter().map(|q| format!("{q}.{rest}")).collect();
            let all = FIELDS
                .iter()
                .map(|f| f.name)
                .chain(guesses.iter().map(String::as_str));
            let hint = did_you_mean(&suggest(name, all));
            let message = format!(
                "unknown field \"{name}\"{hint}; only feature.<name> and score.<name> fields \
                 have a dot"
            );
            return Err(SegmentError::at(ErrorKind::UnknownField, pos, message));
        }
        if !self.qualified.iter().any(|(n, _)| n == name) {
            if self.qualified.len() >= MAX_QUALIFIED {
                let message = format!(
                    "a rule may use at most {MAX_QUALIFIED} different feature. and score. fields"
                );
                return Err(SegmentError::at(ErrorKind::Limit, pos, message));
            }
            self.qualified.push((name.to_string(), pos));
        }
        Ok(FieldRef::Qualified(name.to_string()))
    }
}

/// Up to five of `candidates` close to `name`: same name ignoring case, names starting with
/// it, or within a small edit distance.
fn suggest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<String> {
    let wanted = name.to_ascii_lowercase();
    let n = wanted.chars().count();
    let limit = (n / 3).clamp(1, 3);
    let mut scored: Vec<(usize, &str)> = candidates
        .filter_map(|candidate| {
            let lower = candidate.to_ascii_lowercase();
            let distance = if lower == wanted {
                0
            } else if n >= 3 && lower.starts_with(&wanted) {
                1
            } else if n.abs_diff(lower.chars().count()) > limit {
                return None;
            } else {
                edit_distance(&wanted, &lower)
            };
            (distance <= limit).then_some((distance, candidate))
        })
        .collect();
    scored.sort_unstable();
    scored.dedup();
    scored
        .into_iter()
        .take(5)
        .map(|(_, c)| c.to_string())
        .collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

fn did_you_mean(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => format!(" (did you mean \"{one}\"?)"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|n| format!("\"{n}\"")).collect();
            format!(" (did you mean {} or \"{last}\"?)", init.join(", "))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Public rule and compilation

/// A parsed, type-checked segment rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    root: Expr,
    /// Distinct `feature.`/`score.` fields with their first position, in order of appearance.
    qualified: Vec<(String, Pos)>,
}

/// A value bound to a placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    /// Bind as a double.
    Number(f64),
    /// Bind as text.
    Text(String),
}

/// A rule compiled to SQL over `contacts c`.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    /// `LEFT JOIN contact_values v0 ON ...` clauses separated by spaces (may be empty), to put
    /// after `FROM contacts c`.
    pub joins: String,
    /// A boolean SQL expression over `c` and the joins, parenthesised.
    pub condition: String,
    /// Values for placeholders `$first_placeholder`, `$first_placeholder+1`, … in the order
    /// they appear in joins then condition.
    pub binds: Vec<Bind>,
}

impl Rule {
    /// Parses and type-checks a rule. Everything but the existence of `feature.`/`score.`
    /// fields (checked by [`Rule::compile`]) is verified here.
    pub fn parse(text: &str) -> Result<Rule, SegmentError> {
        if text.chars().nth(MAX_RULE_CHARS).is_some() {
            let mut pos = START;
            for c in text.chars().take(MAX_RULE_CHARS) {
                pos = if c == '\n' {
                    Pos {
                        line: pos.line + 1,
                        column: 1,
                    }
                } else {
                    Pos {
                        column: pos.column + 1,
                        ..pos
                    }
                };
            }
            let message = format!("a rule may be at most {MAX_RULE_CHARS} characters long");
            return Err(SegmentError::at(ErrorKind::Limit, pos, message));
        }
        if text.trim().is_empty() {
            return Err(SegmentError::unlocated(
                ErrorKind::Syntax,
                START,
                "the rule is empty".to_string(),
            ));
        }
        let (tokens, end) = lex(text);
        let mut parser = Parser {
            tokens,
            next: 0,
            end,
            predicates: 0,
            qualified: Vec::new(),
        };
        let root = parser.or(0)?;
        if parser.peek()?.is_some() {
            return Err(parser.unexpected("expected \"and\", \"or\" or the end of the rule"));
        }
        Ok(Rule {
            root,
            qualified: parser.qualified,
        })
    }

    /// The qualified (feature./score.) fields the rule reads, for callers that want to check
    /// them early. In order of first appearance, without repeats.
    pub fn qualified_fields(&self) -> Vec<String> {
        self.qualified
            .iter()
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Compiles the rule to SQL.
    ///
    /// `known` holds the organization's `feature.`/`score.` names; `today_days` is today as days
    /// since 1970-01-01 (for `tenure_years` and `property_age_years`); placeholders are numbered
    /// from `first_placeholder` (at least 1).
    pub fn compile(
        &self,
        known: &BTreeSet<String>,
        today_days: i64,
        first_placeholder: usize,
    ) -> Result<Compiled, SegmentError> {
        if let Some((name, pos)) = self
            .qualified
            .iter()
            .find(|(name, _)| !known.contains(name))
        {
            return Err(unknown_qualified(name, *pos, known));
        }
        let mut emitter = Emitter {
            next: first_placeholder,
            binds: Vec::new(),
            qualified: &self.qualified,
            today_days,
            sql: String::new(),
        };
        let mut joins = String::new();
        for (i, (name, _)) in self.qualified.iter().enumerate() {
            let p = emitter.param(Bind::Text(name.clone()));
            if i > 0 {
                joins.push(' ');
            }
            let _ = write!(
                joins,
                "LEFT JOIN contact_values v{i} ON v{i}.org_id = c.org_id \
                 AND v{i}.contact_id = c.id AND v{i}.name = {p}"
            );
        }
        emitter.expr(&self.root);
        Ok(Compiled {
            joins,
            condition: emitter.sql,
            binds: emitter.binds,
        })
    }
}

impl std::str::FromStr for Rule {
    type Err = SegmentError;

    fn from_str(text: &str) -> Result<Rule, SegmentError> {
        Rule::parse(text)
    }
}

fn unknown_qualified(name: &str, pos: Pos, known: &BTreeSet<String>) -> SegmentError {
    let mut hint = did_you_mean(&suggest(name, known.iter().map(String::as_str)));
    if hint.is_empty() {
        let qualifier = name.split_once('.').map_or(name, |(q, _)| q);
        let prefix = format!("{qualifier}.");
        let some: Vec<String> = known
            .iter()
            .filter(|k| k.starts_with(&prefix))
            .take(5)
            .map(|k| format!("\"{k}\""))
            .collect();
        hint = if some.is_empty() {
            format!(" (no {qualifier} fields are available)")
        } else {
            format!(
                " (available {qualifier} fields include {})",
                some.join(", ")
            )
        };
    }
    SegmentError::at(
        ErrorKind::UnknownField,
        pos,
        format!("unknown field \"{name}\"{hint}"),
    )
}

/// The civil (proleptic Gregorian) year of a day counted from 1970-01-01.
fn year_from_days(days: i64) -> i64 {
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // The computed year starts in March; January and February belong to the next one.
    yoe + era * 400 + i64::from(mp >= 10)
}

struct Emitter<'a> {
    next: usize,
    binds: Vec<Bind>,
    qualified: &'a [(String, Pos)],
    today_days: i64,
    sql: String,
}

impl Emitter<'_> {
    fn param(&mut self, bind: Bind) -> String {
        let n = self.next;
        self.next = self.next.saturating_add(1);
        self.binds.push(bind);
        format!("${n}")
    }

    fn expr(&mut self, expr: &Expr) {
        match expr {
            Expr::Or(items) => self.list(items, " OR "),
            Expr::And(items) => self.list(items, " AND "),
            Expr::Not(inner) => {
                self.sql.push_str("(NOT ");
                self.expr(inner);
                self.sql.push(')');
            }
            Expr::Pred(pred) => self.predicate(pred),
        }
    }

    fn list(&mut self, items: &[Expr], separator: &str) {
        self.sql.push('(');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.sql.push_str(separator);
            }
            self.expr(item);
        }
        self.sql.push(')');
    }

    /// The field's SQL expression, binding today's values where it needs them.
    fn field(&mut self, field: &FieldRef) -> String {
        match field {
            FieldRef::Bare(f) => match f.name {
                "tenure_years" => {
                    let p = self.param(Bind::Number(self.today_days as f64));
                    format!("(({p} - c.closed_on_day) / 365.25)")
                }
                "property_age_years" => {
                    let p = self.param(Bind::Number(year_from_days(self.today_days) as f64));
                    format!("({p} - c.year_built)")
                }
                "rate_spread" => "(c.loan_rate_pct - c.market_rate_pct)".to_string(),
                name => format!("c.{name}"),
            },
            FieldRef::Qualified(name) => {
                let i = self
                    .qualified
                    .iter()
                    .position(|(n, _)| n == name)
                    .unwrap_or(0);
                format!("v{i}.value")
            }
        }
    }

    fn value(&mut self, value: &Bind, text: bool) -> String {
        let p = self.param(value.clone());
        if text { format!("lower({p})") } else { p }
    }

    fn predicate(&mut self, pred: &Pred) {
        let field = self.field(&pred.field);
        let text = pred.field.kind() == FieldType::Text;
        let subject = if text {
            format!("lower({field})")
        } else {
            field.clone()
        };
        let sql = match &pred.test {
            Test::Cmp(op, value) => {
                let value = self.value(value, text);
                format!("({subject} {} {value})", op.sql())
            }
            Test::In { negated, values } => {
                let mut list = Vec::with_capacity(values.len());
                for value in values {
                    list.push(self.value(value, text));
                }
                let not = if *negated { "NOT " } else { "" };
                format!("({subject} {not}IN ({}))", list.join(", "))
            }
            Test::Null { negated } => {
                format!("({field} IS {}NULL)", if *negated { "NOT " } else { "" })
            }
        };
        self.sql.push_str(&sql);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn known() -> BTreeSet<String> {
        let names = [
            "score.refinance",
            "score.sell",
            "feature.valuation_views_7d",
        ];
        names
            .into_iter()
            .chain(["feature.valuation_views_30d"])
            .map(String::from)
            .collect()
    }

    fn compile(text: &str) -> Result<Compiled, SegmentError> {
        Rule::parse(text)?.compile(&known(), 19_723, 1)
    }

    /// The binds written compactly: numbers as they print, text in single quotes.
    fn show(binds: &[Bind]) -> String {
        let shown: Vec<String> = binds
            .iter()
            .map(|b| match b {
                Bind::Number(v) => format!("{v}"),
                Bind::Text(s) => format!("'{s}'"),
            })
            .collect();
        shown.join(" ")
    }

    #[test]
    fn example_rule() {
        let text = r#"equity_pct > 40 and tenure_years >= 5 and zip in ("50010","50014")"#;
        let rule = Rule::parse(&format!("{text} and score.refinance >= 0.6")).expect("parses");
        assert_eq!(rule.qualified_fields(), vec!["score.refinance".to_string()]);
        let c = rule.compile(&known(), 19_723, 2).expect("compiles");
        assert_eq!(
            c.joins,
            "LEFT JOIN contact_values v0 ON v0.org_id = c.org_id AND v0.contact_id = c.id \
             AND v0.name = $2"
        );
        assert_eq!(
            c.condition,
            "((c.equity_pct > $3) AND ((($4 - c.closed_on_day) / 365.25) >= $5) \
             AND (lower(c.zip) IN (lower($6), lower($7))) AND (v0.value >= $8))"
        );
        assert_eq!(
            c.binds,
            [
                Bind::Text("score.refinance".into()),
                Bind::Number(40.0),
                Bind::Number(19_723.0),
                Bind::Number(5.0),
                Bind::Text("50010".into()),
                Bind::Text("50014".into()),
                Bind::Number(0.6),
            ]
        );
    }

    #[test]
    fn operators_and_field_kinds() {
        let c = compile(
            "property_age_years < 30 and rate_spread <> 1.5 and city != 'Ames' and email is null \
             and value is not null and beds not in (1, 2) and consent = \"SUBSCRIBED\"",
        )
        .expect("compiles");
        assert_eq!(c.joins, "");
        assert_eq!(
            c.condition,
            "((($1 - c.year_built) < $2) AND ((c.loan_rate_pct - c.market_rate_pct) <> $3) \
             AND (lower(c.city) <> lower($4)) AND (c.email IS NULL) AND (c.value IS NOT NULL) \
             AND (c.beds NOT IN ($5, $6)) AND (lower(c.consent) = lower($7)))"
        );
        assert_eq!(show(&c.binds), "2024 30 1.5 'Ames' 1 2 'SUBSCRIBED'");
        let c = compile(r#"city = "a\"b\\c'" or city = 'd\'e' or sqft = 1E3"#).expect("compiles");
        assert_eq!(show(&c.binds), r#"'a"b\c'' 'd'e' 1000"#);
    }

    #[test]
    fn precedence_not_and_parentheses() {
        for (rule, sql) in [
            (
                "beds > 1 or baths > 2 and sqft > 3",
                "((c.beds > $1) OR ((c.baths > $2) AND (c.sqft > $3)))",
            ),
            (
                "(beds > 1 or baths > 2) and sqft > 3",
                "(((c.beds > $1) OR (c.baths > $2)) AND (c.sqft > $3))",
            ),
            (
                "not beds > 1 and not (baths > 2 or sqft > 3)",
                "((NOT (c.beds > $1)) AND (NOT ((c.baths > $2) OR (c.sqft > $3))))",
            ),
            ("not not ((beds = -3e0))", "(NOT (NOT (c.beds = $1)))"),
        ] {
            assert_eq!(compile(rule).expect("compiles").condition, sql, "{rule}");
        }
        assert_eq!(
            show(&compile("not not ((beds = -3e0))").expect("compiles").binds),
            "-3"
        );
    }

    #[test]
    fn keywords_ignore_case_and_rules_span_lines() {
        let lower = compile("beds > 1 and baths > 2 or not zip in ('1') and city is not null");
        let mixed =
            compile("beds > 1 AND baths > 2\n   Or NOT zip IN ('1')\n\tand city IS Not NULL");
        assert_eq!(lower.expect("compiles"), mixed.expect("compiles"));
        let e = compile("beds > 1\n  and zipp = '5'").expect_err("unknown field");
        assert_eq!(e.position(), (2, 7));
        assert_eq!((e.line(), e.column()), (2, 7));
        assert_eq!(
            e.to_string(),
            "line 2, column 7: unknown field \"zipp\" (did you mean \"zip\"?)"
        );
    }

    #[test]
    fn placeholders_with_several_qualified_fields() {
        let rule = Rule::parse(
            "score.sell > 0.5 and (feature.valuation_views_7d >= 3 or score.sell < 0.9) \
             and tenure_years > 2 and feature.valuation_views_7d in (1, 2)",
        )
        .expect("parses");
        assert_eq!(
            rule.qualified_fields(),
            ["score.sell", "feature.valuation_views_7d"]
        );
        let c = rule.compile(&known(), 19_723, 2).expect("compiles");
        assert_eq!(
            c.joins,
            "LEFT JOIN contact_values v0 ON v0.org_id = c.org_id AND v0.contact_id = c.id \
             AND v0.name = $2 LEFT JOIN contact_values v1 ON v1.org_id = c.org_id \
             AND v1.contact_id = c.id AND v1.name = $3"
        );
        assert_eq!(
            c.condition,
            "((v0.value > $4) AND ((v1.value >= $5) OR (v0.value < $6)) \
             AND ((($7 - c.closed_on_day) / 365.25) > $8) AND (v1.value IN ($9, $10)))"
        );
        assert_eq!(
            show(&c.binds),
            "'score.sell' 'feature.valuation_views_7d' 0.5 3 0.9 19723 2 1 2"
        );
    }

    /// Pairs of lines: a rule, then `=> kind line:column message`.
    const ERROR_CASES: &str = r#"
beds >= 3 and equty_pct > 40
=> UnknownField 1:15 line 1, column 15: unknown field "equty_pct" (did you mean "equity_pct"?)
equity_pct > 40 and zip > 5
=> Type 1:25 line 1, column 25: "zip" is text; ">" needs a number field
equity_pct >=
=> Syntax 1:14 unexpected end of rule: expected a value after ">="
zip 40
=> Syntax 1:5 line 1, column 5: expected an operator after field "zip", found "40"
equity_pct = 'high'
=> Type 1:14 line 1, column 14: "equity_pct" is a number field; expected a number, found the text 'high'
zip in ("1", 50010)
=> Type 1:14 line 1, column 14: "zip" is a text field; expected text in quotes, found the number 50010
beds = TRUE
=> Type 1:8 line 1, column 8: "beds" is a number field; expected a number, found true
consent = 'subscrbed'
=> Value 1:11 line 1, column 11: "consent" must be one of subscribed, unsubscribed, bounced, complained; found "subscrbed"
property_type in ('condo', 'castle')
=> Value 1:28 line 1, column 28: "property_type" must be one of single_family, townhouse, condo, multi_family; found "castle"
foo.bar > 1
=> UnknownField 1:1 line 1, column 1: unknown field "foo.bar"; only feature.<name> and score.<name> fields have a dot
scores.refinance > 1
=> UnknownField 1:1 line 1, column 1: unknown field "scores.refinance" (did you mean "score.refinance"?); only feature.<name> and score.<name> fields have a dot
beds > 1 and score.refinanse > 0.5
=> UnknownField 1:14 line 1, column 14: unknown field "score.refinanse" (did you mean "score.refinance"?)
feature.valuation_views > 1
=> UnknownField 1:1 line 1, column 1: unknown field "feature.valuation_views" (did you mean "feature.valuation_views_30d" or "feature.valuation_views_7d"?)
score.zzzzzzzzzz > 1
=> UnknownField 1:1 line 1, column 1: unknown field "score.zzzzzzzzzz" (available score fields include "score.refinance", "score.sell")
beds > 1e999
=> Value 1:8 line 1, column 8: number "1e999" is out of range
beds > 12ab
=> Syntax 1:8 line 1, column 8: invalid number "12ab"
city = 'ames
=> Syntax 1:8 line 1, column 8: text in quotes is never closed
city = 'a\nb'
=> Syntax 1:10 line 1, column 10: unknown escape "\n" (only \", \' and \\ are allowed)
beds > 1 & baths > 1
=> Syntax 1:10 line 1, column 10: unexpected character "&"
beds ! 1
=> Syntax 1:6 line 1, column 6: unexpected "!" (use "!=" for "not equal")
(beds > 1 or baths > 2
=> Syntax 1:23 unexpected end of rule: expected ")" to close the "(" at line 1, column 1
beds > 1 baths > 2
=> Syntax 1:10 line 1, column 10: expected "and", "or" or the end of the rule, found "baths"
beds > 1 and or baths > 2
=> Syntax 1:14 line 1, column 14: expected a condition after "and", found "or"
beds > 1 and
=> Syntax 1:13 unexpected end of rule: expected a condition after "and"
beds not (1)
=> Syntax 1:10 line 1, column 10: expected "in" after "not", found "("
beds in 1
=> Syntax 1:9 line 1, column 9: expected "(" after "in", found "1"
beds in (1 2)
=> Syntax 1:12 line 1, column 12: expected "," or ")" after a value in the list, found "2"
beds in ()
=> Syntax 1:10 line 1, column 10: expected a value after "(", found ")"
beds is 1
=> Syntax 1:9 line 1, column 9: expected "null" after "is", found "1"
beds = null
=> Syntax 1:8 line 1, column 8: a missing value is tested with "beds is null" or "beds is not null"
zip = 'x' and 'y'
=> Syntax 1:15 line 1, column 15: expected a condition after "and", found the text 'y'
"#;

    fn check_error(rule: &str, expected: &str) {
        let e = compile(rule).expect_err(rule);
        let (kind, rest) = expected.split_once(' ').expect("a kind");
        let (position, message) = rest.split_once(' ').expect("a position");
        assert_eq!(format!("{:?}", e.kind()), kind, "rule {rule:?}");
        assert_eq!(
            format!("{}:{}", e.line(), e.column()),
            position,
            "rule {rule:?}"
        );
        assert_eq!(e.to_string(), message, "rule {rule:?}");
    }

    #[test]
    fn error_messages_and_positions() {
        let lines: Vec<&str> = ERROR_CASES.lines().skip(1).collect();
        assert_eq!(lines.len(), 2 * 31);
        for pair in lines.chunks(2) {
            check_error(
                pair[0],
                pair[1].strip_prefix("=> ").expect("an expectation"),
            );
        }
        check_error("  \n\t ", "Syntax 1:1 the rule is empty");
        check_error(
            "beds > 1 and\n  score.refinanse > 0.5",
            "UnknownField 2:3 line 2, column 3: unknown field \"score.refinanse\" \
             (did you mean \"score.refinance\"?)",
        );
        let nested = "line 1, column 129: \"not\" and parentheses nest more than 32 deep";
        check_error(
            &format!("{}beds > 1", "not ".repeat(33)),
            &format!("Limit 1:129 {nested}"),
        );
        let nested = "line 1, column 33: \"not\" and parentheses nest more than 32 deep";
        let rule = format!("{}beds > 1{}", "(".repeat(33), ")".repeat(33));
        check_error(&rule, &format!("Limit 1:33 {nested}"));
        let long = "line 1, column 2010: an \"in\" list may have at most 1000 values";
        let rule = format!("beds in ({})", vec!["1"; 1001].join(","));
        check_error(&rule, &format!("Limit 1:2010 {long}"));
        let many = "line 1, column 2401: a rule may have at most 200 conditions";
        check_error(
            &vec!["beds > 1"; 201].join(" or "),
            &format!("Limit 1:2401 {many}"),
        );
        let fields: Vec<String> = (0..17).map(|i| format!("score.s{i} > 0")).collect();
        let message = "line 1, column 263: a rule may use at most 16 different feature. and \
                       score. fields";
        check_error(&fields.join(" or "), &format!("Limit 1:263 {message}"));
        let message = "line 1, column 4001: a rule may be at most 4000 characters long";
        check_error(&"b".repeat(4001), &format!("Limit 1:4001 {message}"));
        // At the limits themselves, rules are accepted.
        assert!(compile(&format!("{}beds > 1", "not ".repeat(32))).is_ok());
        assert!(compile(&format!("beds in ({})", vec!["1"; 1000].join(","))).is_ok());
        assert!(compile(&vec!["beds > 1"; 200].join(" or ")).is_ok());
        assert!(compile(&format!("{:<4000}", "beds > 1")).is_ok());
        let rule = Rule::parse("feature.x > 1").expect("parses");
        let e = rule.compile(&BTreeSet::new(), 0, 2).expect_err("unknown");
        assert_eq!(
            e.to_string(),
            "line 1, column 1: unknown field \"feature.x\" (no feature fields are available)"
        );
    }

    #[test]
    fn catalog_is_consistent() {
        for (i, f) in FIELDS.iter().enumerate() {
            assert!(
                FIELDS.iter().skip(i + 1).all(|g| g.name != f.name),
                "{}",
                f.name
            );
            assert!(!f.description.is_empty());
            let rule = format!("{} is not null", f.name);
            assert!(compile(&rule).is_ok(), "{rule}");
        }
        assert_eq!(FIELDS.len(), 31);
        assert_eq!(
            find_field("consent").map(|f| f.values),
            Some(CONSENT_VALUES)
        );
    }

    #[test]
    fn civil_years() {
        for (days, year) in [
            (0, 1970),
            (-1, 1969),
            (19_722, 2023),
            (19_723, 2024),
            (11_016, 2000),
            (-719_468, 0),
            (2_932_896, 9999),
        ] {
            assert_eq!(year_from_days(days), year, "day {days}");
        }
    }

    /// Years counted the slow way, for checking the closed form.
    fn naive_year(days: i64) -> i64 {
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let length = |y: i64| if leap(y) { 366 } else { 365 };
        let (mut year, mut rest) = (1970, days);
        while rest < 0 {
            year -= 1;
            rest += length(year);
        }
        while rest >= length(year) {
            rest -= length(year);
            year += 1;
        }
        year
    }

    fn number_literal() -> impl Strategy<Value = String> {
        prop_oneof![
            (-100_000i64..100_000).prop_map(|v| v.to_string()),
            (-1.0e4f64..1.0e4).prop_map(|v| format!("{v}")),
            (-1.0e4f64..1.0e4).prop_map(|v| format!("{v:e}")),
        ]
    }

    fn text_literal() -> impl Strategy<Value = (String, String)> {
        ("Q[a-z0-9 '\"\\\\]{0,8}", any::<bool>()).prop_map(|(value, double)| {
            let quote = if double { '"' } else { '\'' };
            let mut out = String::from(quote);
            for c in value.chars() {
                if c == quote || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push(quote);
            (value, out)
        })
    }

    fn predicate() -> impl Strategy<Value = (String, Vec<String>)> {
        let number_field = prop::sample::select(vec![
            "equity_pct",
            "tenure_years",
            "value",
            "property_age_years",
            "rate_spread",
            "score.refinance",
            "score.sell",
            "feature.valuation_views_7d",
        ]);
        let text_field = prop::sample::select(vec!["zip", "city", "email", "agent_email"]);
        let op = prop::sample::select(vec!["=", "!=", "<>", "<", "<=", ">", ">="]);
        let eq = prop::sample::select(vec!["=", "!=", "<>"]);
        let not = any::<bool>().prop_map(|b| if b { "not " } else { "" });
        prop_oneof![
            (number_field.clone(), op, number_literal())
                .prop_map(|(f, o, v)| (format!("{f} {o} {v}"), vec![])),
            (text_field.clone(), eq, text_literal())
                .prop_map(|(f, o, (value, lit))| (format!("{f} {o} {lit}"), vec![value])),
            (
                number_field.clone(),
                not.clone(),
                prop::collection::vec(number_literal(), 1..4)
            )
                .prop_map(|(f, n, vs)| (format!("{f} {n}in ({})", vs.join(", ")), vec![])),
            (
                text_field,
                not.clone(),
                prop::collection::vec(text_literal(), 1..4)
            )
                .prop_map(|(f, n, vs)| {
                    let lits: Vec<&str> = vs.iter().map(|(_, lit)| lit.as_str()).collect();
                    let rule = format!("{f} {n}IN ({})", lits.join(","));
                    (rule, vs.into_iter().map(|(value, _)| value).collect())
                }),
            (number_field, not).prop_map(|(f, n)| (format!("{f} is {n}null"), vec![])),
            prop::sample::select(vec!["Subscribed", "BOUNCED", "complained", "unsubscribed"])
                .prop_map(|v| (format!("consent = '{v}'"), vec![v.to_string()])),
        ]
    }

    fn rule() -> impl Strategy<Value = (String, Vec<String>)> {
        predicate().prop_recursive(4, 24, 3, |inner| {
            let join = |(a, mut va): (String, Vec<String>), (b, vb): (String, Vec<String>), k| {
                va.extend(vb);
                (format!("{a} {k} {b}"), va)
            };
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(move |(a, b)| join(a, b, "and")),
                (inner.clone(), inner.clone()).prop_map(move |(a, b)| join(a, b, "OR")),
                inner.clone().prop_map(|(a, v)| (format!("not ({a})"), v)),
                inner.prop_map(|(a, v)| (format!("(\n{a})"), v)),
            ]
        })
    }

    /// The numbers of the `$n` placeholders in `sql`, in textual order.
    fn placeholders(sql: &str) -> Vec<usize> {
        let mut found = Vec::new();
        let mut rest = sql;
        while let Some(i) = rest.find('$') {
            rest = &rest[i + 1..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            found.push(digits.parse().expect("a placeholder number"));
        }
        found
    }

    proptest! {
        #[test]
        fn valid_rules_compile_to_bound_sql((text, values) in rule(), first in 1usize..5) {
            let fail = |e: SegmentError| TestCaseError::fail(format!("{e}: {text}"));
            let rule = Rule::parse(&text).map_err(fail)?;
            let c = rule.compile(&known(), 20_000, first).map_err(fail)?;
            let sql = format!("{} {}", c.joins, c.condition);
            let expected: Vec<usize> = (first..first + c.binds.len()).collect();
            prop_assert_eq!(placeholders(&sql), expected);
            // No quote, backslash or marker character: nothing was spliced in as text.
            prop_assert!(!sql.contains(['\'', '"', 'Q', '\\']), "{}", sql);
            for value in &values {
                prop_assert!(!sql.contains(value.as_str()));
            }
            let qualified = rule.qualified_fields();
            for name in &qualified {
                prop_assert!(!sql.contains(name.as_str()));
            }
            // The text binds after the joins' names are the rule's strings, in order, unescaped.
            let texts: Vec<String> = c.binds[qualified.len()..]
                .iter()
                .filter_map(|b| match b {
                    Bind::Text(s) => Some(s.clone()),
                    Bind::Number(_) => None,
                })
                .collect();
            prop_assert_eq!(texts, values);
            prop_assert!(c.condition.starts_with('(') && c.condition.ends_with(')'));
        }

        #[test]
        fn parse_never_panics(text in any::<String>()) {
            let _ = Rule::parse(&text);
        }

        #[test]
        fn parse_never_panics_on_token_soup(words in prop::collection::vec(
            prop::sample::select(vec![
                "beds", "zip", "score.x", "foo.bar", "and", "OR", "not", "in", "is", "null",
                "true", "(", ")", ",", "=", "!=", "<>", "<", ">=", "!", "1", "-2.5e3", "1e999",
                "'a'", "\"b", "'\\q'", ".", "\n", "é", "consent", "'bounced'",
            ]),
            0..40,
        )) {
            let text = words.concat();
            let _ = Rule::parse(&text);
            let _ = Rule::parse(&words.join(" "));
        }

        #[test]
        fn closed_form_year_matches_counting(days in -800_000i64..800_000) {
            prop_assert_eq!(year_from_days(days), naive_year(days));
        }
    }
}
