//! Rule building blocks: ops, op sets, subjects, effects, rule display.

use policy::{Effect, Op, OpSet, Pattern, Rule, RuleError, Subject};

#[test]
fn op_round_trip() {
    for op in Op::ALL {
        assert_eq!(op.to_string().parse::<Op>(), Ok(op));
    }
    assert_eq!(Op::Force.to_string(), "force");
    assert!("Force".parse::<Op>().is_err());
}

#[test]
fn opset_parse_and_display() {
    let s = OpSet::parse(" update , create,update ").unwrap();
    assert_eq!(s.to_string(), "create,update");
    assert!(s.contains(Op::Create) && s.contains(Op::Update));
    assert!(!s.contains(Op::Force) && !s.contains(Op::Delete));
    assert_eq!(s.iter().collect::<Vec<_>>(), vec![Op::Create, Op::Update]);
    assert_eq!(OpSet::parse("all").unwrap(), OpSet::ALL);
    assert_eq!(OpSet::ALL.to_string(), "create,update,force,delete");
    assert_eq!(OpSet::parse("delete,force").unwrap().to_string(), "force,delete");
    assert!(!OpSet::ALL.is_empty());
    assert!(OpSet::EMPTY.is_empty());
    assert_eq!([Op::Delete].into_iter().collect::<OpSet>().to_string(), "delete");
}

#[test]
fn opset_errors_name_the_bad_word() {
    let err = OpSet::parse("create,push").unwrap_err();
    assert_eq!(err, RuleError::UnknownOp { word: "push".into() });
    let msg = err.to_string();
    assert!(
        msg.contains("\"push\"") && msg.contains("create, update, force, delete"),
        "{msg}"
    );
    assert_eq!(OpSet::parse(""), Err(RuleError::EmptyOps));
    assert_eq!(OpSet::parse(" , "), Err(RuleError::EmptyOps));
}

#[test]
fn subject_parse_and_display() {
    for s in ["user:alice", "team:devs", "everyone"] {
        assert_eq!(s.parse::<Subject>().unwrap().to_string(), s);
    }
    assert!(matches!(
        "group:x".parse::<Subject>(),
        Err(RuleError::BadSubject { .. })
    ));
    assert!(matches!(
        "alice".parse::<Subject>(),
        Err(RuleError::BadSubject { .. })
    ));
    let msg = "team:a/b".parse::<Subject>().unwrap_err().to_string();
    assert!(msg.starts_with("invalid team name \"a/b\""), "{msg}");
}

#[test]
fn effect_parse() {
    assert_eq!("allow".parse::<Effect>(), Ok(Effect::Allow));
    assert_eq!(Effect::Deny.to_string(), "deny");
    assert!("permit".parse::<Effect>().is_err());
}

#[test]
fn rule_display() {
    let mut r = Rule::new(
        3,
        10,
        Subject::Team("devs".into()),
        Pattern::parse("flathub").unwrap(),
        Pattern::parse("app/**").unwrap(),
        OpSet::parse("create,update").unwrap(),
        Effect::Allow,
    );
    assert!(r.timestamp_check && !r.require_signature);
    assert_eq!(
        r.to_string(),
        "#3 allow create,update on repo \"flathub\" ref \"app/**\" for team:devs"
    );
    r.require_signature = true;
    r.timestamp_check = false;
    assert_eq!(
        r.to_string(),
        "#3 allow create,update on repo \"flathub\" ref \"app/**\" for team:devs \
         [signature required] [timestamp check waived]"
    );
}
