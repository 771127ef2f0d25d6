//! Parsing of authorized_keys-style input for `key add`.

use russh::keys::{HashAlg, PublicKey};

use crate::store::keys::NewKey;

/// Parses every non-empty, non-comment line; options before the key are accepted (and ignored:
/// the gateway's own policy decides what a key may do). Errors name the line.
pub fn parse(text: &str) -> Result<Vec<NewKey>, String> {
    let mut keys = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = parse_line(line).map_err(|e| format!("line {}: malformed public key ({e})", index + 1))?;
        let key = &key;
        let comment = key.comment().to_string();
        let comment = comment.trim();
        let encoded = key
            .to_openssh()
            .map_err(|e| format!("line {}: cannot encode key ({e})", index + 1))?;
        // to_openssh yields "ALGO BASE64 [COMMENT]"; keep the blob only.
        let blob = encoded.split_whitespace().nth(1).unwrap_or_default().to_string();
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        if keys.iter().any(|k: &NewKey| k.fingerprint == fingerprint) {
            return Err(format!(
                "line {}: key {fingerprint} appears twice in the input",
                index + 1
            ));
        }
        keys.push(NewKey {
            algorithm: key.algorithm().as_str().to_string(),
            key_blob: blob,
            fingerprint,
            comment: (!comment.is_empty()).then(|| comment.to_string()),
        });
    }
    if keys.is_empty() {
        return Err("no public key found in the input".into());
    }
    Ok(keys)
}

/// Key algorithms we accept at the start of the key part of a line.
fn is_key_type(word: &str) -> bool {
    word.starts_with("ssh-") || word.starts_with("ecdsa-sha2-") || word.starts_with("sk-")
}

/// One authorized_keys line: `[options] type base64 [comment]`. Options may hold quoted
/// strings with spaces (`command="a b"`), so the split point is the first blank outside quotes.
fn parse_line(line: &str) -> Result<PublicKey, String> {
    let first = line.split_whitespace().next().unwrap_or_default();
    let key_part = if is_key_type(first) {
        line
    } else {
        let mut in_quotes = false;
        let mut escaped = false;
        let mut split = None;
        for (i, c) in line.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if in_quotes => escaped = true,
                '"' => in_quotes = !in_quotes,
                ' ' | '\t' if !in_quotes => {
                    split = Some(i);
                    break;
                }
                _ => {}
            }
        }
        match split {
            Some(i) => line[i..].trim_start(),
            None => return Err("no key after the options".into()),
        }
    };
    PublicKey::from_openssh(key_part).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOv3LNjV6cYHHm7s3FGtHDA+PpbbzjkWk0fF0hTMO0Te alice@laptop";

    #[test]
    fn options_and_comments_are_accepted() {
        let text = format!("# team keys\n\nno-pty,command=\"echo hi there\" {ED}\n");
        let keys = parse(&text).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].algorithm, "ssh-ed25519");
        assert_eq!(keys[0].comment.as_deref(), Some("alice@laptop"));
        assert!(keys[0].fingerprint.starts_with("SHA256:"));
    }

    #[test]
    fn garbage_names_the_line() {
        let err = parse(&format!("{ED}\nssh-ed25519 notbase64!!\n")).unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
    }

    #[test]
    fn duplicate_in_input_is_refused() {
        let err = parse(&format!("{ED}\n{ED}\n")).unwrap_err();
        assert!(err.contains("twice"), "{err}");
    }

    #[test]
    fn empty_input_is_refused() {
        assert!(parse("# nothing\n").is_err());
    }
}
