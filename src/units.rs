//! Sizes and durations as people write and read them: `500kB`, `1.2 MB`,
//! `+3.4%`, `12h`.

use std::time::Duration;

/// `1234567` → `1.2 MB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `+1.2 kB`, `-300 B`.
pub fn signed_bytes(delta: i64) -> String {
    let sign = if delta > 0 {
        "+"
    } else if delta < 0 {
        "-"
    } else {
        "±"
    };
    format!("{sign}{}", human_bytes(delta.unsigned_abs()))
}

/// `+2.5%`, or `new` when there was nothing before.
pub fn percent(old: u64, new: u64) -> String {
    if old == 0 {
        return if new == 0 {
            "±0%".into()
        } else {
            "new".into()
        };
    }
    let p = (new as f64 / old as f64 - 1.0) * 100.0;
    format!("{p:+.1}%")
}

/// `1000`, `500kB`, `500MB`, `2GiB` → bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("not a size: `{text}`"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` (use B, kB, MB, GB, KiB, MiB, GiB)"
            ));
        }
    };
    Ok((number * factor) as u64)
}

/// `0`, `90s`, `30m`, `12h`, `7d` → a duration.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (n, unit) = text.split_at(split);
    let n: u64 = n.parse().ok()?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n.checked_mul(seconds)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_human() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1234), "1.2 kB");
        assert_eq!(human_bytes(5_600_000), "5.6 MB");
    }

    #[test]
    fn formatting() {
        assert_eq!(signed_bytes(1200), "+1.2 kB");
        assert_eq!(signed_bytes(-300), "-300 B");
        assert_eq!(percent(100, 125), "+25.0%");
        assert_eq!(percent(0, 5), "new");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("3w"), None);
        assert_eq!(parse_duration("h"), None);
    }
}
