//! Streaming readers of the channel's clearing file. One line is held at a
//! time; every line is validated, and a bad line is reported with its
//! number and field, not fatal.
//!
//! Two layouts: the CSV of SPEC §8, and a fixed-width layout of the kind
//! UnionPay file interfaces use (docs/FORMATS.md gives every field's offset
//! and width). Both produce the same `ChannelLine`s for the same matcher.

use std::io::{BufRead, BufReader, Read};

use chrono::NaiveDate;
use clearing_core::calendar::parse_timestamp;
use clearing_core::recon::{ChannelLine, MatchKey, ReconType};
use clearing_core::Fen;

/// The CSV header, exactly.
pub const CSV_HEADER: [&str; 10] = [
    "business_date",
    "occurred_at",
    "merchant_id",
    "terminal_id",
    "rrn",
    "stan",
    "card",
    "txn_type",
    "amount",
    "fee",
];

clearing_core::wire_enum! {
    /// The layouts of a clearing file.
    pub enum Layout {
        /// SPEC §8's CSV.
        Csv = "csv",
        /// The fixed-width layout of docs/FORMATS.md.
        UnionpayFixed = "unionpay-fixed",
    }
}

/// A fixed-width field: name, byte offset, width.
pub struct Field {
    pub name: &'static str,
    pub offset: usize,
    pub width: usize,
}

/// The `unionpay-fixed` layout, one record per line, ASCII, fields padded
/// with spaces (text, left-aligned) or zeros (numbers, right-aligned).
pub const FIXED_FIELDS: [Field; 10] = [
    Field {
        name: "txn_code",
        offset: 0,
        width: 3,
    },
    Field {
        name: "stan",
        offset: 3,
        width: 6,
    },
    Field {
        name: "transmission_time",
        offset: 9,
        width: 10,
    },
    Field {
        name: "card",
        offset: 19,
        width: 19,
    },
    Field {
        name: "amount",
        offset: 38,
        width: 12,
    },
    Field {
        name: "mcc",
        offset: 50,
        width: 4,
    },
    Field {
        name: "merchant_id",
        offset: 54,
        width: 15,
    },
    Field {
        name: "terminal_id",
        offset: 69,
        width: 8,
    },
    Field {
        name: "rrn",
        offset: 77,
        width: 12,
    },
    Field {
        name: "fee",
        offset: 89,
        width: 12,
    },
];

/// Length of a `unionpay-fixed` record.
pub const FIXED_WIDTH: usize = 101;
/// Transaction codes of the fixed layout: 消费 (sale) and 退货 (refund).
pub const FIXED_CODE_SALE: &str = "S22";
pub const FIXED_CODE_REFUND: &str = "S30";

/// A line that failed validation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BadLine {
    pub line: u64,
    pub field: String,
    pub detail: String,
}

/// Why a file cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: wrong header {found:?}, expected {expected:?}")]
    Header {
        file: String,
        found: String,
        expected: String,
    },
    #[error("{file}: is empty (no header)")]
    Empty { file: String },
}

pub enum Parsed {
    Line(ChannelLine),
    Bad(BadLine),
}

enum Inner<R: Read> {
    Csv {
        reader: csv::Reader<R>,
        record: csv::StringRecord,
    },
    Fixed {
        reader: BufReader<R>,
        buf: String,
        line: u64,
    },
}

pub struct ChannelReader<R: Read> {
    file: String,
    inner: Inner<R>,
    /// The year of fixed-width transmission times (they carry none).
    year: i32,
}

fn bad(line: u64, field: &str, detail: impl Into<String>) -> Parsed {
    Parsed::Bad(BadLine {
        line,
        field: field.to_string(),
        detail: detail.into(),
    })
}

impl<R: Read> ChannelReader<R> {
    /// Opens a clearing file of `layout`; a CSV header must match exactly.
    pub fn new(
        file: &str,
        input: R,
        layout: Layout,
        date: NaiveDate,
    ) -> Result<ChannelReader<R>, FileError> {
        use chrono::Datelike;
        let inner = match layout {
            Layout::Csv => {
                let mut reader = csv::ReaderBuilder::new()
                    .has_headers(false)
                    .flexible(true)
                    .buffer_capacity(1 << 20)
                    .from_reader(input);
                let mut header = csv::StringRecord::new();
                let read = reader
                    .read_record(&mut header)
                    .map_err(|e| io_error(file, e))?;
                if !read {
                    return Err(FileError::Empty {
                        file: file.to_string(),
                    });
                }
                let found: Vec<&str> = header
                    .iter()
                    .map(|h| h.trim_start_matches('\u{feff}'))
                    .collect();
                if found != CSV_HEADER {
                    return Err(FileError::Header {
                        file: file.to_string(),
                        found: found.join(","),
                        expected: CSV_HEADER.join(","),
                    });
                }
                Inner::Csv {
                    reader,
                    record: csv::StringRecord::new(),
                }
            }
            Layout::UnionpayFixed => Inner::Fixed {
                reader: BufReader::with_capacity(1 << 20, input),
                buf: String::new(),
                line: 0,
            },
        };
        Ok(ChannelReader {
            file: file.to_string(),
            inner,
            year: date.year(),
        })
    }

    /// The next line, validated; `None` at the end of the file.
    pub fn next_line(&mut self) -> Result<Option<Parsed>, FileError> {
        match &mut self.inner {
            Inner::Csv { reader, record } => loop {
                match reader.read_record(record) {
                    Ok(false) => return Ok(None),
                    Ok(true) => {
                        let line = record.position().map_or(0, |p| p.line());
                        if record.len() == 1 && record[0].trim().is_empty() {
                            continue;
                        }
                        return Ok(Some(parse_csv(line, record)));
                    }
                    Err(e) => match e.kind() {
                        csv::ErrorKind::Utf8 { pos, .. } => {
                            let line = pos.as_ref().map_or(0, |p| p.line());
                            return Ok(Some(bad(line, "line", "not valid UTF-8")));
                        }
                        _ => return Err(io_error(&self.file, e)),
                    },
                }
            },
            Inner::Fixed { reader, buf, line } => loop {
                buf.clear();
                let mut bytes = Vec::new();
                let n = reader
                    .read_until(b'\n', &mut bytes)
                    .map_err(|source| FileError::Io {
                        file: self.file.clone(),
                        source,
                    })?;
                if n == 0 {
                    return Ok(None);
                }
                *line += 1;
                let Ok(text) = String::from_utf8(bytes) else {
                    return Ok(Some(bad(*line, "line", "not valid UTF-8")));
                };
                let text = text.trim_end_matches(['\n', '\r']);
                if text.trim().is_empty() {
                    continue;
                }
                return Ok(Some(parse_fixed(*line, text, self.year)));
            },
        }
    }
}

fn io_error(file: &str, e: csv::Error) -> FileError {
    match e.into_kind() {
        csv::ErrorKind::Io(source) => FileError::Io {
            file: file.to_string(),
            source,
        },
        other => FileError::Io {
            file: file.to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{other:?}")),
        },
    }
}

fn required<'a>(line: u64, field: &str, v: &'a str) -> Result<&'a str, Parsed> {
    let v = v.trim();
    if v.is_empty() {
        Err(bad(line, field, "missing"))
    } else {
        Ok(v)
    }
}

fn money(line: u64, field: &str, v: &str, amount: bool) -> Result<Fen, Parsed> {
    let parsed = if amount {
        Fen::parse_amount(v)
    } else {
        Fen::parse_unsigned(v)
    };
    parsed.map_err(|_| {
        bad(
            line,
            field,
            format!(
                "{v:?} is not an amount like 12.34{}",
                if amount { " (0.01 to 10000000.00)" } else { "" }
            ),
        )
    })
}

fn txn_type(line: u64, field: &str, v: &str) -> Result<ReconType, Parsed> {
    ReconType::parse(v).ok_or_else(|| bad(line, field, format!("{v:?} is not sale or refund")))
}

fn parse_csv(line: u64, r: &csv::StringRecord) -> Parsed {
    if r.len() != CSV_HEADER.len() {
        return bad(
            line,
            "line",
            format!("{} fields, expected {}", r.len(), CSV_HEADER.len()),
        );
    }
    let go = || -> Result<ChannelLine, Parsed> {
        let date_text = required(line, "business_date", &r[0])?;
        let business_date = clearing_core::dates::parse(date_text).ok_or_else(|| {
            bad(
                line,
                "business_date",
                format!("{date_text:?} is not a YYYY-MM-DD date"),
            )
        })?;
        let occurred = required(line, "occurred_at", &r[1])?;
        if parse_timestamp(occurred).is_none() {
            return Err(bad(
                line,
                "occurred_at",
                format!("{occurred:?} is not an RFC 3339 time with an offset"),
            ));
        }
        let merchant_id = required(line, "merchant_id", &r[2])?;
        let terminal_id = required(line, "terminal_id", &r[3])?;
        let rrn = required(line, "rrn", &r[4])?;
        let kind = txn_type(line, "txn_type", r[7].trim())?;
        let amount = money(line, "amount", r[8].trim(), true)?;
        let fee = money(line, "fee", r[9].trim(), false)?;
        Ok(ChannelLine {
            line,
            business_date: Some(business_date),
            merchant_id: merchant_id.into(),
            key: MatchKey {
                terminal_id: terminal_id.into(),
                rrn: rrn.into(),
                txn_type: kind,
            },
            amount,
            fee,
        })
    };
    match go() {
        Ok(l) => Parsed::Line(l),
        Err(b) => b,
    }
}

fn fen_digits(line: u64, field: &str, v: &str, amount: bool) -> Result<Fen, Parsed> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(
            line,
            field,
            format!("{v:?} is not {} digits of fen", v.len()),
        ));
    }
    let fen: i64 = v
        .parse()
        .map_err(|_| bad(line, field, format!("{v:?} is out of range")))?;
    if amount && !(1..=1_000_000_000).contains(&fen) {
        return Err(bad(
            line,
            field,
            format!("{fen} fen is outside 0.01 to 10000000.00"),
        ));
    }
    Ok(Fen(fen))
}

fn parse_fixed(line: u64, text: &str, year: i32) -> Parsed {
    if !text.is_ascii() {
        return bad(line, "line", "not ASCII");
    }
    if text.len() != FIXED_WIDTH {
        return bad(
            line,
            "line",
            format!("{} characters, expected {FIXED_WIDTH}", text.len()),
        );
    }
    let field = |i: usize| {
        let f = &FIXED_FIELDS[i];
        (f.name, &text[f.offset..f.offset + f.width])
    };
    let go = || -> Result<ChannelLine, Parsed> {
        let (name, code) = field(0);
        let kind = match code {
            FIXED_CODE_SALE => ReconType::Sale,
            FIXED_CODE_REFUND => ReconType::Refund,
            other => {
                return Err(bad(
                    line,
                    name,
                    format!(
                        "{other:?} is not {FIXED_CODE_SALE} (sale) or {FIXED_CODE_REFUND} (refund)"
                    ),
                ))
            }
        };
        let (name, time) = field(2);
        let valid_time = time.bytes().all(|b| b.is_ascii_digit())
            && chrono::NaiveDateTime::parse_from_str(&format!("{year}{time}"), "%Y%m%d%H%M%S")
                .is_ok();
        if !valid_time {
            return Err(bad(line, name, format!("{time:?} is not MMDDhhmmss")));
        }
        let (name, amount) = field(4);
        let amount = fen_digits(line, name, amount, true)?;
        let (name, merchant) = field(6);
        let merchant_id = required(line, name, merchant)?;
        let (name, terminal) = field(7);
        let terminal_id = required(line, name, terminal)?;
        let (name, rrn) = field(8);
        let rrn = required(line, name, rrn)?;
        let (name, fee) = field(9);
        let fee = fen_digits(line, name, fee, false)?;
        Ok(ChannelLine {
            line,
            business_date: None,
            merchant_id: merchant_id.into(),
            key: MatchKey {
                terminal_id: terminal_id.into(),
                rrn: rrn.into(),
                txn_type: kind,
            },
            amount,
            fee,
        })
    };
    match go() {
        Ok(l) => Parsed::Line(l),
        Err(b) => b,
    }
}

/// Writes one record in the `unionpay-fixed` layout (for generators and
/// tests). Text longer than its field is an error, never truncated.
#[allow(clippy::too_many_arguments)]
pub fn fixed_record(
    txn_type: ReconType,
    stan: &str,
    transmission_time: &str,
    card: &str,
    amount: Fen,
    mcc: &str,
    merchant_id: &str,
    terminal_id: &str,
    rrn: &str,
    fee: Fen,
) -> Result<String, String> {
    let code = match txn_type {
        ReconType::Sale => FIXED_CODE_SALE,
        ReconType::Refund => FIXED_CODE_REFUND,
    };
    let values = [
        code.to_string(),
        format!("{stan:0>6}"),
        transmission_time.to_string(),
        format!("{card:<19}"),
        format!("{:012}", amount.0),
        format!("{mcc:<4}"),
        format!("{merchant_id:<15}"),
        format!("{terminal_id:<8}"),
        format!("{rrn:<12}"),
        format!("{:012}", fee.0),
    ];
    let mut out = String::with_capacity(FIXED_WIDTH);
    for (f, v) in FIXED_FIELDS.iter().zip(values) {
        if v.len() != f.width {
            return Err(format!(
                "{} {v:?} does not fit {} characters",
                f.name, f.width
            ));
        }
        out.push_str(&v);
    }
    Ok(out)
}

/// Reads a whole clearing file into memory-light pieces: a helper for
/// callers that do not stream (tests).
pub fn read_all<R: Read>(
    r: &mut ChannelReader<R>,
) -> Result<(Vec<ChannelLine>, Vec<BadLine>), FileError> {
    let mut lines = Vec::new();
    let mut bads = Vec::new();
    while let Some(p) = r.next_line()? {
        match p {
            Parsed::Line(l) => lines.push(l),
            Parsed::Bad(b) => bads.push(b),
        }
    }
    Ok((lines, bads))
}
