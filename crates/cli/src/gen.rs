//! A seeded, realistic day of acquiring: registry, fee schedule, calendar
//! and transactions, for `clearing demo` and `clearing bench`.
//!
//! The day has both clearing modes, all five channels, declines, voids,
//! reversals, partial and full refunds, identical resends, conflicting
//! resends, bad records of every kind, 跳码/跳商户 and records around the
//! 23:00 cutoff. The same seed always gives the same files.

use std::fmt::Write as _;
use std::io::Write;

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use clearing_app::core::Fen;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub const FEES_TOML: &str = r#"cutoff = "23:00"            # local time (UTC+08:00) that ends a business date

[plans.standard]
debit_card  = { rate = "0.005",  cap = "20.00" }
credit_card = { rate = "0.006" }
wechat      = { rate = "0.0038" }
alipay      = { rate = "0.0038" }
unionpay_qr = { rate = "0.006" }   # 云闪付 / UnionPay QR at the credit-card rate

[plans.exempt]                     # 减免类: public hospitals, schools
debit_card  = { rate = "0" }
credit_card = { rate = "0" }
wechat      = { rate = "0" }
alipay      = { rate = "0" }
unionpay_qr = { rate = "0" }
"#;

/// 2026 public holidays (non-working days besides weekends) that fall near
/// the demo dates, plus New Year.
pub const HOLIDAYS_TXT: &str = "# 2026 non-working days besides Saturdays and Sundays\n2026-01-01\n2026-10-01\n2026-10-02\n2026-10-05\n2026-10-06\n2026-10-07\n";

#[derive(Clone, Debug)]
pub struct Params {
    pub seed: u64,
    pub merchants: usize,
    pub txns: usize,
    pub business_date: NaiveDate,
    /// Share of records deliberately broken or otherwise rejectable.
    pub faults: bool,
}

pub struct Day {
    pub merchants_jsonl: String,
    pub intermediaries_jsonl: String,
    /// Number of transaction lines written.
    pub lines: u64,
}

struct M {
    id: String,
    mcc: &'static str,
    terminals: Vec<String>,
}

const MCCS: &[(&str, &str, bool)] = &[
    ("5812", "面馆", false),
    ("5812", "餐厅", false),
    ("5814", "快餐店", false),
    ("5411", "超市", false),
    ("5499", "便利店", false),
    ("5541", "加油站", false),
    ("5691", "服装店", false),
    ("5732", "电器行", false),
    ("5912", "药房", false),
    ("7011", "酒店", false),
    ("7230", "理发店", false),
    ("8062", "人民医院", true),
    ("8211", "实验小学", true),
];
const SURNAMES: &[&str] = &[
    "张记", "王氏", "李家", "刘记", "陈氏", "杨家", "赵记", "黄氏", "周家", "吴记", "徐氏", "孙家",
];
const CITIES: &[&str] = &[
    "浦东", "海淀", "天河", "武侯", "西湖", "鼓楼", "南山", "江汉",
];

/// Writes a whole generated day into `dir`: `transactions.jsonl`,
/// `merchants.jsonl`, `intermediaries.jsonl`, `fees.toml`, `holidays.txt`.
pub fn write_day(p: &Params, dir: &std::path::Path) -> std::io::Result<Day> {
    std::fs::create_dir_all(dir)?;
    let mut txns = std::io::BufWriter::new(std::fs::File::create(dir.join("transactions.jsonl"))?);
    let day = generate(p, &mut txns)?;
    txns.flush()?;
    std::fs::write(dir.join("merchants.jsonl"), &day.merchants_jsonl)?;
    std::fs::write(dir.join("intermediaries.jsonl"), &day.intermediaries_jsonl)?;
    std::fs::write(dir.join("fees.toml"), FEES_TOML)?;
    std::fs::write(dir.join("holidays.txt"), HOLIDAYS_TXT)?;
    Ok(day)
}

/// Writes the registry into the returned `Day` and the transactions into `out`.
pub fn generate(p: &Params, out: &mut impl Write) -> std::io::Result<Day> {
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
    let n_intermediaries = (p.merchants / 60).clamp(1, 8);
    let mut intermediaries_jsonl = String::new();
    for i in 0..n_intermediaries {
        writeln!(
            intermediaries_jsonl,
            r#"{{"intermediary_id":"AGG{:03}","name":"{}聚合支付{}号","settlement_account":"62220202{:011}"}}"#,
            i + 1,
            CITIES[i % CITIES.len()],
            i + 1,
            rng.gen_range(0..99_999_999_999u64)
        )
        .expect("write to string");
    }
    let mut merchants = Vec::with_capacity(p.merchants);
    let mut merchants_jsonl = String::new();
    let mut terminal_seq = 10_000_001u64;
    for i in 0..p.merchants {
        let (mcc, kind, exempt) = MCCS[rng.gen_range(0..MCCS.len())];
        let second_party = !exempt && rng.gen_bool(0.25);
        let id = format!("8225840{:04}{:04}", 5311 + (i / 10_000), i % 10_000);
        let terminals: Vec<String> = (0..rng.gen_range(1..=3))
            .map(|_| {
                terminal_seq += 1;
                terminal_seq.to_string()
            })
            .collect();
        let name = format!(
            "{}{}{}",
            SURNAMES[rng.gen_range(0..SURNAMES.len())],
            CITIES[i % CITIES.len()],
            kind
        );
        let intermediary = if second_party {
            format!("\"AGG{:03}\"", rng.gen_range(1..=n_intermediaries))
        } else {
            "null".to_string()
        };
        writeln!(
            merchants_jsonl,
            r#"{{"merchant_id":"{id}","name":"{name}","mcc":"{mcc}","clearing":"{}","intermediary_id":{intermediary},"settlement_cycle":"{}","fee_plan":"{}","terminals":[{}],"settlement_account":"62220202{:011}"}}"#,
            if second_party { "second_party" } else { "first_party" },
            if rng.gen_bool(0.15) { "D0" } else { "T1" },
            if exempt { "exempt" } else { "standard" },
            terminals.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(","),
            rng.gen_range(0..99_999_999_999u64),
        )
        .expect("write to string");
        merchants.push(M { id, mcc, terminals });
    }
    let lines = write_transactions(p, &merchants, &mut rng, out)?;
    Ok(Day {
        merchants_jsonl,
        intermediaries_jsonl,
        lines,
    })
}

#[derive(Clone)]
struct Sale {
    txn_id: String,
    merchant: usize,
    terminal: String,
    channel: &'static str,
    amount_fen: u64,
    at: NaiveDateTime,
}

const CHANNELS: &[(&str, u32)] = &[
    ("wechat", 35),
    ("alipay", 30),
    ("debit_card", 15),
    ("credit_card", 12),
    ("unionpay_qr", 8),
];

fn pick_channel(rng: &mut ChaCha8Rng) -> &'static str {
    let mut x = rng.gen_range(0..100);
    for (c, w) in CHANNELS {
        if x < *w {
            return c;
        }
        x -= w;
    }
    "wechat"
}

fn amount(rng: &mut ChaCha8Rng) -> u64 {
    match rng.gen_range(0..1000) {
        // the seed figures: 10,000.00 sales
        0..=2 => 1_000_000,
        // big-ticket items, enough for the debit cap to bite
        3..=30 => rng.gen_range(400_000..2_000_000),
        // 1 yuan: "why didn't my 1 yuan arrive?"
        31..=40 => 100,
        // everyday tickets: mostly small, some medium
        41..=440 => rng.gen_range(200..2_000),
        441..=890 => rng.gen_range(2_000..20_000),
        _ => rng.gen_range(20_000..80_000),
    }
}

fn fen(f: u64) -> String {
    format!("{}.{:02}", f / 100, f % 100)
}

fn pan(rng: &mut ChaCha8Rng) -> String {
    let bin = ["622848", "621700", "625907", "436742", "622202"][rng.gen_range(0..5)];
    let mut s = bin.to_string();
    for _ in 0..10 {
        s.push(char::from(b'0' + rng.gen_range(0..10u8)));
    }
    s
}

struct Writer<'a, W: Write> {
    out: &'a mut W,
    lines: u64,
    rrn: u64,
    stan: u32,
}

impl<W: Write> Writer<'_, W> {
    fn line(&mut self, s: &str) -> std::io::Result<()> {
        self.lines += 1;
        self.out.write_all(s.as_bytes())?;
        self.out.write_all(b"\n")
    }

    fn next_rrn(&mut self) -> String {
        self.rrn += 1;
        format!("{:012}", self.rrn)
    }

    fn next_stan(&mut self) -> String {
        self.stan = self.stan % 999_999 + 1;
        format!("{:06}", self.stan)
    }
}

#[allow(clippy::too_many_arguments)]
fn record(
    txn_id: &str,
    kind: &str,
    original: Option<&str>,
    merchant: &str,
    terminal: &str,
    mcc: &str,
    channel: &str,
    amount: &str,
    result: &str,
    decline: Option<&str>,
    rrn: &str,
    stan: &str,
    card: Option<&str>,
    at: NaiveDateTime,
) -> String {
    let opt = |v: Option<&str>| v.map_or("null".to_string(), |v| format!("\"{v}\""));
    format!(
        r#"{{"txn_id":"{txn_id}","type":"{kind}","original_txn_id":{},"merchant_id":"{merchant}","terminal_id":"{terminal}","mcc":"{mcc}","channel":"{channel}","amount":"{amount}","currency":"CNY","result":"{result}","decline_code":{},"rrn":"{rrn}","stan":"{stan}","card":{},"occurred_at":"{}+08:00"}}"#,
        opt(original),
        opt(decline),
        opt(card),
        at.format("%Y-%m-%dT%H:%M:%S")
    )
}

/// What every record of the generated day draws on.
struct DayPlan<'a> {
    ms: &'a [M],
    /// `P` + the business date: the prefix of sale ids.
    prefix: String,
    faults: bool,
}

fn write_transactions(
    p: &Params,
    ms: &[M],
    rng: &mut ChaCha8Rng,
    out: &mut impl Write,
) -> std::io::Result<u64> {
    let day = p.business_date;
    let open = day.and_time(NaiveTime::from_hms_opt(7, 0, 0).expect("time"));
    let span_secs = 15 * 3600; // 07:00 – 22:00
    let mut w = Writer {
        out,
        lines: 0,
        rrn: 432_100_000_000 + p.seed % 1000 * 1_000_000,
        stan: 0,
    };
    let plan = DayPlan {
        ms,
        prefix: format!("P{}", day.format("%Y%m%d")),
        faults: p.faults,
    };
    let mut sales: Vec<Sale> = Vec::new();
    let mut seq = 0u64;
    let mut i = 0usize;
    while i < p.txns {
        seq += 1;
        i += 1;
        let elapsed_secs = (i as u64 * span_secs / p.txns.max(1) as u64) as i64;
        let mut at = open + Duration::seconds(elapsed_secs + rng.gen_range(0..30));
        // a few records around the cutoff: 22:50–23:10
        if rng.gen_range(0..400) == 0 {
            at = day.and_time(NaiveTime::from_hms_opt(22, 50, 0).expect("time"))
                + Duration::seconds(rng.gen_range(0..1200));
        }
        let mi = rng.gen_range(0..ms.len());
        let roll = rng.gen_range(0..1000);
        // a later action on an earlier sale of the day
        if roll < 40 && !sales.is_empty() {
            write_follow_up(&mut w, rng, &plan, &sales, roll, at, seq)?;
            continue;
        }
        write_sale(&mut w, rng, &plan, mi, &mut sales, at, seq)?;
    }
    Ok(w.lines)
}

/// A void, reversal or refund of an earlier sale of the day.
fn write_follow_up<W: Write>(
    w: &mut Writer<'_, W>,
    rng: &mut ChaCha8Rng,
    plan: &DayPlan<'_>,
    sales: &[Sale],
    roll: u32,
    at: NaiveDateTime,
    seq: u64,
) -> std::io::Result<()> {
    let s = sales[rng.gen_range(0..sales.len())].clone();
    let sm = &plan.ms[s.merchant];
    let (kind, amount_fen, tag) = match roll {
        0..=9 => ("void", s.amount_fen, 'V'),
        10..=14 => ("reversal", s.amount_fen, 'R'),
        15..=29 => ("refund", (s.amount_fen / rng.gen_range(1..=4)).max(1), 'F'),
        _ => ("refund", s.amount_fen, 'F'),
    };
    let when = s.at.max(at) + Duration::seconds(rng.gen_range(1..600));
    let id = format!("{tag}{}{seq:07}", &plan.prefix[1..]);
    let rrn = w.next_rrn();
    let stan = w.next_stan();
    let line = record(
        &id,
        kind,
        Some(&s.txn_id),
        &sm.id,
        &s.terminal,
        sm.mcc,
        s.channel,
        &fen(amount_fen),
        "approved",
        None,
        &rrn,
        &stan,
        None,
        when,
    );
    w.line(&line)
}

/// A sale of merchant `mi` at `at`, with its jumps, declines, card, resend
/// and (when asked) faults.
fn write_sale<W: Write>(
    w: &mut Writer<'_, W>,
    rng: &mut ChaCha8Rng,
    plan: &DayPlan<'_>,
    mi: usize,
    sales: &mut Vec<Sale>,
    at: NaiveDateTime,
    seq: u64,
) -> std::io::Result<()> {
    let ms = plan.ms;
    let m = &ms[mi];
    let id = format!("{}{seq:07}", plan.prefix);
    let channel = pick_channel(rng);
    let mut terminal = m.terminals[rng.gen_range(0..m.terminals.len())].clone();
    let mut mcc = m.mcc;
    match rng.gen_range(0..1000) {
        // 跳商户: the terminal of another merchant
        0..=4 => {
            let other = &ms[rng.gen_range(0..ms.len())];
            terminal = other.terminals[0].clone();
        }
        // a terminal nobody registered
        5..=7 => terminal = format!("9999{:04}", rng.gen_range(0..10_000)),
        // 跳码: a cheaper MCC than registered
        8..=17 => mcc = ["5411", "8062", "5912"][rng.gen_range(0..3)],
        _ => {}
    }
    let amount_fen = amount(rng);
    let declined = rng.gen_range(0..100) < 3;
    let decline = declined.then(|| ["51", "55", "05", "61"][rng.gen_range(0..4)]);
    let card_channel = matches!(channel, "debit_card" | "credit_card");
    let card = card_channel.then(|| {
        let full = pan(rng);
        // half the terminals already mask, half send the full PAN
        if rng.gen_bool(0.5) {
            full
        } else {
            clearing_app::core::mask::mask_card(&full).into_owned()
        }
    });
    let rrn = w.next_rrn();
    let stan = w.next_stan();
    let line = record(
        &id,
        "sale",
        None,
        &m.id,
        &terminal,
        mcc,
        channel,
        &fen(amount_fen),
        if declined { "declined" } else { "approved" },
        decline,
        &rrn,
        &stan,
        card.as_deref(),
        at,
    );
    w.line(&line)?;
    if !declined {
        sales.push(Sale {
            txn_id: id.clone(),
            merchant: mi,
            terminal: terminal.clone(),
            channel,
            amount_fen,
            at,
        });
        if sales.len() > 2000 {
            sales.remove(rng.gen_range(0..sales.len()));
        }
    }
    // identical resend (a terminal retrying after a timeout)
    if rng.gen_range(0..100) == 0 {
        w.line(&line)?;
    }
    if plan.faults && rng.gen_range(0..50) == 0 {
        write_fault(w, rng, &line, &id, &m.id, sales, at, seq)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn write_fault<W: Write>(
    w: &mut Writer<'_, W>,
    rng: &mut ChaCha8Rng,
    line: &str,
    id: &str,
    merchant: &str,
    sales: &[Sale],
    at: NaiveDateTime,
    seq: u64,
) -> std::io::Result<()> {
    let bad_id = format!("X{}{seq:07}", &id[1..9]);
    let with_id = line.replace(id, &bad_id);
    let rrn = w.next_rrn();
    let stan = w.next_stan();
    let fault = match rng.gen_range(0..11) {
        0 => line[..line.len() / 2].to_string(), // invalid_json (cut off)
        1 => with_id.replace(r#","rrn":"#, r#","rrn_":"#), // missing_field
        2 => line
            .replace(r#""currency":"CNY""#, r#""currency":"CNY","x":1"#)
            .replace(r#""type":"sale""#, r#""type":"sale","note":"resend""#), // conflicting_duplicate
        3 => with_id.replace(r#""type":"sale""#, r#""type":"purchase""#), // invalid_field
        4 => {
            let a = line
                .split(r#""amount":""#)
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("1.00")
                .to_string();
            with_id.replace(&format!(r#""amount":"{a}""#), &format!(r#""amount":{a}"#))
            // invalid_amount (a JSON number)
        }
        5 => with_id.replace(r#""currency":"CNY""#, r#""currency":"USD""#), // unsupported_currency
        6 => with_id.replace("+08:00", ""),                                 // invalid_timestamp
        7 => with_id.replace(merchant, "822584099999999"),                  // unknown_merchant
        8 => record(
            &bad_id,
            "refund",
            Some("P00000000NOPE"),
            merchant,
            "10000002",
            "5812",
            "wechat",
            "1.00",
            "approved",
            None,
            &rrn,
            &stan,
            None,
            at,
        ), // unknown_original
        9 => match sales.last() {
            // refund_exceeds_original
            Some(s) => record(
                &bad_id,
                "refund",
                Some(&s.txn_id),
                merchant,
                &s.terminal,
                "5812",
                s.channel,
                &fen(s.amount_fen + 100),
                "approved",
                None,
                &rrn,
                &stan,
                None,
                at + Duration::seconds(5),
            ),
            None => line.replace("\"amount\":\"", "\"amount\":\"-"),
        },
        _ => with_id
            .replace(r#""amount":""#, r#""amount":"1"#)
            .replace(".", ".0"), // invalid_amount (3 decimals) or bad time
    };
    w.line(&fault)
}

/// What a generated channel file holds besides faithful lines.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct ChannelFaults {
    pub dropped: u64,
    pub amount_changed: u64,
    pub fee_changed: u64,
    pub duplicated: u64,
    pub unknown_added: u64,
    pub cancelled_reported: u64,
    pub near_cutoff_left_out: u64,
}

/// Writes the channel's clearing file (SPEC §8 CSV) for `date` from the
/// ledger's own side of that date, as a channel that mostly agrees would
/// send it: near-cutoff items are left for the next file, and when `faults`
/// is set, about one line in 200 of each kind of break is injected.
pub fn write_channel_file(
    ledger: &[clearing_app::core::recon::LedgerItem],
    date: chrono::NaiveDate,
    seed: u64,
    faults: bool,
    path: &std::path::Path,
) -> std::io::Result<(u64, ChannelFaults)> {
    use clearing_app::core::recon::LedgerStatus;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x63_6c65_6172);
    let mut f = ChannelFaults::default();
    let mut w = csv::Writer::from_writer(std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(path)?,
    ));
    let mut lines = 0u64;
    w.write_record(clearing_app::CSV_HEADER)?;
    let mut put = |w: &mut csv::Writer<_>,
                   i: &clearing_app::core::recon::LedgerItem,
                   amount: Fen,
                   fee: Fen|
     -> std::io::Result<()> {
        lines += 1;
        w.write_record([
            date.to_string().as_str(),
            &format!("{date}T12:00:00+08:00"),
            &i.merchant_id,
            &i.key.terminal_id,
            &i.key.rrn,
            "000000",
            "",
            i.key.txn_type.as_str(),
            &amount.to_string(),
            &fee.to_string(),
        ])?;
        Ok(())
    };
    for i in ledger {
        let roll = if faults { rng.gen_range(0..200) } else { 199 };
        if i.status != LedgerStatus::Approved {
            if roll == 0 {
                f.cancelled_reported += 1;
                put(&mut w, i, i.amount, i.fee)?;
            }
            continue;
        }
        if i.near_cutoff {
            f.near_cutoff_left_out += 1;
            continue;
        }
        match roll {
            0 => f.dropped += 1,
            1 => {
                f.amount_changed += 1;
                put(&mut w, i, Fen(i.amount.0 + 1), i.fee)?;
            }
            2 => {
                f.fee_changed += 1;
                put(&mut w, i, i.amount, Fen(i.fee.0 + 1))?;
            }
            3 => {
                f.duplicated += 1;
                put(&mut w, i, i.amount, i.fee)?;
                put(&mut w, i, i.amount, i.fee)?;
            }
            4 => {
                f.unknown_added += 1;
                put(&mut w, i, i.amount, i.fee)?;
                let mut ghost = i.clone();
                ghost.key.rrn =
                    compact_str::format_compact!("9{}", &i.key.rrn[1.min(i.key.rrn.len())..]);
                put(&mut w, &ghost, i.amount, i.fee)?;
            }
            _ => put(&mut w, i, i.amount, i.fee)?,
        }
    }
    w.flush()?;
    Ok((lines, f))
}
