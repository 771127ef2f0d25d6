//! `ostree-gateway audit …`

use anyhow::bail;
use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};

use super::{output, Admin};
use crate::cli::AuditArgs;
use crate::store::audit;

pub async fn run(admin: &Admin, args: AuditArgs) -> anyhow::Result<()> {
    if args.limit < 1 {
        bail!("--limit must be at least 1");
    }
    let filter = audit::Filter {
        repo: args.repo,
        user: args.user,
        since: args
            .since
            .as_deref()
            .map(|s| parse_since(s, Utc::now()))
            .transpose()?,
        push_id: None,
        limit: Some(args.limit),
        admin: Some(args.admin),
    };
    let mut conn = admin.store.conn().await?;
    let entries = audit::query(&mut conn, &filter).await?;
    if args.json.json {
        return output::json(&entries);
    }
    let short = |rev: &Option<String>| {
        rev.as_deref()
            .map(|r| r.chars().take(12).collect::<String>())
            .unwrap_or_else(|| "-".into())
    };
    let rows = entries
        .iter()
        .map(|e| {
            vec![
                e.id.to_string(),
                e.time.clone(),
                output::opt(&e.user),
                output::opt(&e.repo),
                output::opt(&e.ref_name),
                output::opt(&e.op),
                format!("{}→{}", short(&e.old_rev), short(&e.new_rev)),
                e.state.clone(),
                e.matched_rule
                    .map(|r| format!("#{r}"))
                    .unwrap_or_else(|| "-".into()),
                output::opt(&e.reason),
            ]
        })
        .collect::<Vec<_>>();
    output::table(
        &[
            "ID",
            "TIME",
            "USER",
            "REPO",
            "REF",
            "OP",
            "OLD→NEW",
            "STATE",
            "RULE",
            "REASON",
        ],
        &rows,
    );
    Ok(())
}

/// Accepts RFC 3339, a plain date (midnight UTC), or an age like `90s`, `30m`, `12h`, `7d`, `2w`.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> anyhow::Result<String> {
    let text = text.trim();
    let time = if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        t.with_timezone(&Utc)
    } else if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()
    } else {
        let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let n: i64 = match number.parse() {
            Ok(n) => n,
            Err(_) => bail!("invalid --since \"{text}\": use RFC 3339 (2026-01-31T12:00:00Z), a date (2026-01-31) or an age (30m, 12h, 7d)"),
        };
        let age = match unit {
            "s" => Duration::seconds(n),
            "m" => Duration::minutes(n),
            "h" => Duration::hours(n),
            "d" => Duration::days(n),
            "w" => Duration::weeks(n),
            _ => bail!("invalid --since \"{text}\": unknown unit \"{unit}\" (use s, m, h, d or w)"),
        };
        now - age
    };
    Ok(time.to_rfc3339_opts(SecondsFormat::Millis, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_forms() {
        let now = DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_since("2h", now).unwrap(), "2026-11-25T10:00:00.000Z");
        assert_eq!(
            parse_since("2026-11-01", now).unwrap(),
            "2026-11-01T00:00:00.000Z"
        );
        assert_eq!(
            parse_since("2026-11-01T01:02:03+01:00", now).unwrap(),
            "2026-11-01T00:02:03.000Z"
        );
        assert!(parse_since("yesterday", now).is_err());
        assert!(parse_since("3y", now).is_err());
    }
}
