//! Times and sizes as restic writes them and as people read them: RFC 3339 with any
//! offset (restic keeps the offset of the machine that made a snapshot), ages such as
//! `3h 12m`, sizes such as `4.2 KiB`.

use std::time::{Duration, SystemTime};

/// Parses `2024-05-01T10:00:00.123456789+02:00` (or `...Z`).
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let (base, offset) = if let Some(base) = text.strip_suffix('Z').or_else(|| text.strip_suffix('z')) {
        (base, 0i64)
    } else {
        let split = text.len().checked_sub(6)?;
        let (base, offset) = (text.get(..split)?, text.get(split..)?);
        let sign = match offset.as_bytes().first() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return None,
        };
        let hours: i64 = offset.get(1..3)?.parse().ok()?;
        let minutes: i64 = offset.get(4..6)?.parse().ok()?;
        (base, sign * (hours * 3600 + minutes * 60))
    };
    let local = humantime::parse_rfc3339(&format!("{base}Z")).ok()?;
    let shift = Duration::from_secs(offset.unsigned_abs());
    // The local time is UTC plus the offset: take it back off.
    if offset >= 0 { local.checked_sub(shift) } else { local.checked_add(shift) }
}

pub use common::report::{show_age, show_time};

/// How long ago `time` was (zero when it is in the future: a clock ahead).
pub fn age(time: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(time).unwrap_or_default()
}

/// A size for people: `512 B`, `4.2 KiB`, `1.5 GiB`.
pub fn show_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_restic_times_with_any_offset() {
        let utc = parse_rfc3339("2024-05-01T08:00:00Z");
        assert!(utc.is_some());
        assert_eq!(parse_rfc3339("2024-05-01T10:00:00+02:00"), utc);
        assert_eq!(parse_rfc3339("2024-05-01T03:30:00-04:30"), utc);
        let nanos =
            parse_rfc3339("2026-11-25T17:38:21.267432311Z").and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok());
        assert_eq!(nanos.map(|d| d.subsec_nanos()), Some(267_432_311));
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(utc.map(show_time).as_deref(), Some("2024-05-01 08:00:00 UTC"));
    }

    #[test]
    fn ages_and_sizes_read_well() {
        assert_eq!(show_age(Duration::from_secs(40)), "40s");
        assert_eq!(show_age(Duration::from_secs(12 * 60 + 5)), "12m");
        assert_eq!(show_age(Duration::from_secs(3 * 3600 + 12 * 60)), "3h 12m");
        assert_eq!(show_age(Duration::from_secs(2 * 86_400 + 4 * 3600 + 59)), "2d 4h");
        assert_eq!(show_bytes(512), "512 B");
        assert_eq!(show_bytes(4300), "4.2 KiB");
        assert_eq!(show_bytes(3 << 30), "3.0 GiB");
    }
}
