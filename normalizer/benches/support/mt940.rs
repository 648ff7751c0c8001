//! The generated MT940 of the `swift` bench, shared with the `mt940_once` example (the
//! callgrind driver) so that both measure the same input.

use std::fmt::Write as _;

/// An MT940 file of about `target` bytes: statements of 40 entries each, balanced.
pub fn mt940(target: usize) -> String {
    let mut out = String::with_capacity(target + 4096);
    let mut balance: i64 = 100_000_000;
    let mut n: u64 = 0;
    let mut day = 0u32;
    while out.len() < target {
        day += 1;
        let (m, d) = (1 + (day / 28) % 12, 1 + day % 28);
        let date = format!("24{m:02}{d:02}");
        let _ = write!(
            out,
            "{{1:F01BANKDEFFAXXX0000000000}}{{2:O940BANKDEFFXXXXN}}{{4:\r\n:20:STMT{day}\r\n:25:DE89370400440532013000\r\n:28C:{day}/1\r\n:60F:{}{date}EUR{},{:02}\r\n",
            if balance < 0 { 'D' } else { 'C' },
            balance.abs() / 100,
            balance.abs() % 100
        );
        for i in 0..40u64 {
            n += 1;
            let cents = ((n * 7919) % 500_000 + 1) as i64;
            let credit = n.is_multiple_of(3);
            balance += if credit { cents } else { -cents };
            let reference = if n.is_multiple_of(2) {
                format!("NONREF//{:016}", n)
            } else {
                "NONREF".to_owned()
            };
            let _ = write!(
                out,
                ":61:{date}{m:02}{d:02}{}R{},{:02}NTRF{reference}\r\n:86:166?00GUTSCHRIFT?109310?20EREF+E2E{n}?21SVWZ+Rechnung {n} Kunde {i}?22Vertrag 4711 Monat {m}?30COBADEFFXXX?31DE02120300000000202051?32Max Mustermann GmbH?34997\r\n",
                if credit { 'C' } else { 'D' },
                cents / 100,
                cents % 100
            );
        }
        let _ = write!(
            out,
            ":62F:{}{date}EUR{},{:02}\r\n-}}\r\n",
            if balance < 0 { 'D' } else { 'C' },
            balance.abs() / 100,
            balance.abs() % 100
        );
    }
    out
}
