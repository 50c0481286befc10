use super::*;
use crate::external::power_loss::space::test_space;
use crate::page_history::PageVersion;

fn dir(files: &[(&str, &[u8])]) -> RealDir {
    RealDir { files: files.iter().map(|(p, b)| (PathBuf::from(p), b.to_vec())).collect(), ..RealDir::default() }
}

// "f": floor AAAABBBB (8 bytes, durable), newest XXXXYYYYZZ after an
// unsynced ftruncate to 10 bytes; 4-byte units. The model leaves open: the
// size change, and units 0, 1, 2 (ZZ against nothing).
fn grown() -> StateSpace {
    test_space(&[("f", b"AAAABBBB", b"XXXXYYYYZZ")], &[], 4, 4)
}

#[test]
fn the_page_cache_itself_is_allowed_with_every_open_unit_newest_and_the_size_kept() {
    let m = judge(&grown(), &dir(&[("f", b"XXXXYYYYZZ")]));
    assert!(m.allowed, "{:?}", m.forbidden);
    assert_eq!(m.units, BTreeMap::from([(UnitKept::Newest, 3)]));
    assert_eq!(m.sizes_beyond_floor, 1);
    assert_eq!(m.operations.len(), 1);
    assert_eq!((m.operations[0].kind.as_str(), m.operations[0].outcome), ("size", OpKept::Kept));
}

#[test]
fn the_durable_floor_is_allowed_with_the_size_change_lost() {
    let m = judge(&grown(), &dir(&[("f", b"AAAABBBB")]));
    assert!(m.allowed, "{:?}", m.forbidden);
    // At 8 bytes only units 0 and 1 exist.
    assert_eq!(m.units, BTreeMap::from([(UnitKept::Floor, 2)]));
    assert_eq!(m.sizes_beyond_floor, 0);
    assert_eq!(m.operations[0].outcome, OpKept::Lost);
}

#[test]
fn units_are_judged_one_by_one_so_a_mix_of_floor_and_newest_is_allowed() {
    // The size kept, unit 0 newest, unit 1 floor, unit 2's ZZ lost (zeros).
    let m = judge(&grown(), &dir(&[("f", b"XXXXBBBB\0\0")]));
    assert!(m.allowed, "{:?}", m.forbidden);
    assert_eq!(m.units, BTreeMap::from([(UnitKept::Floor, 2), (UnitKept::Newest, 1)]));
}

#[test]
fn a_version_the_history_saw_is_allowed_as_intermediate() {
    let s = test_space(&[("f", b"AAAA", b"XXXX")], &[], 4, 4);
    let mut files = s.files.clone();
    files[0].history = vec![PageVersion { page: 0, bytes: b"MMMM".to_vec(), after_call: None, before_call: Some(1) }];
    let s = StateSpace::new(s.ns.clone(), files, 4, 4);
    let m = judge(&s, &dir(&[("f", b"MMMM")]));
    assert!(m.allowed, "{:?}", m.forbidden);
    assert_eq!(m.units, BTreeMap::from([(UnitKept::Intermediate, 1)]));
}

#[test]
fn bytes_no_version_of_the_unit_held_are_a_soundness_violation_naming_the_unit() {
    let m = judge(&grown(), &dir(&[("f", b"XXXXQQQQZZ")]));
    assert!(!m.allowed && !m.not_judged);
    let why = m.forbidden.unwrap();
    assert!(why.contains(r#""f" page 1 holds none of the 2 version(s)"#), "{why}");
}

#[test]
fn a_size_the_file_never_had_is_a_soundness_violation() {
    let m = judge(&grown(), &dir(&[("f", b"XXXX")]));
    assert!(!m.allowed);
    let why = m.forbidden.unwrap();
    assert!(why.contains(r#""f" is 4 bytes where the state has"#), "{why}");
}

#[test]
fn a_name_no_state_has_is_a_soundness_violation() {
    let m = judge(&grown(), &dir(&[("f", b"AAAABBBB"), ("g", b"")]));
    assert!(!m.allowed);
    let why = m.forbidden.unwrap();
    assert!(why.contains(r#"files "f", "g" where the state has "f""#), "{why}");
    let m = judge(&grown(), &dir(&[]));
    assert!(!m.allowed, "the durable file cannot vanish");
}

#[test]
fn unchanged_bytes_outside_the_open_units_must_match_the_one_content() {
    // "same" never changed: any other byte there is outside the model.
    let s = test_space(&[("same", b"SAME", b"SAME")], &[], 4, 4);
    assert!(judge(&s, &dir(&[("same", b"SAME")])).allowed);
    let m = judge(&s, &dir(&[("same", b"SAMX")]));
    assert!(m.forbidden.unwrap().contains("not its durable (and only) content"));
}
