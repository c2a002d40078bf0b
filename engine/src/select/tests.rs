//! Tests of the selector fast path against the interpreter, construct by construct and at random.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::directory::{AttrValue, User};

const ATTRS: [(&str, AttributeType); 5] = [
    ("active", AttributeType::Bool),
    ("department", AttributeType::String),
    ("idp_groups", AttributeType::List),
    ("level", AttributeType::Number),
    ("title", AttributeType::String),
];

fn attributes() -> Vec<(String, AttributeType)> {
    ATTRS.iter().map(|(n, t)| ((*n).to_owned(), *t)).collect()
}

fn s(v: &str) -> AttrValue {
    AttrValue::String(v.to_owned())
}

fn list(v: &[&str]) -> AttrValue {
    AttrValue::List(v.iter().map(|x| (*x).to_owned()).collect())
}

/// A directory whose users have the given values for `ATTRS`, in order.
fn directory(rows: Vec<[AttrValue; 5]>) -> Directory {
    let declared: BTreeMap<String, AttributeType> = attributes().into_iter().collect();
    let mut dir = Directory::new(&declared);
    for (i, attrs) in rows.into_iter().enumerate() {
        assert!(dir.push(User { email: format!("u{i}@corp.example"), attrs: attrs.to_vec() }));
    }
    dir
}

/// A small directory with every kind of value in every column.
fn sample() -> Directory {
    use AttrValue::{Bool, Missing, Number};
    directory(vec![
        [Bool(true), s("Engineering"), list(&["eng", "admins"]), Number(3.0), s("Engineer")],
        [Bool(false), s("Sales"), list(&[]), Number(1.0), s("Intern")],
        [Missing, Missing, Missing, Missing, Missing],
        [Bool(true), s("Engineering"), list(&["eng"]), Number(5.0), s("Intern, Engineering")],
        // Values of the wrong type: the directory does not enforce them.
        [s("yes"), list(&["Engineering"]), s("eng"), s("3"), Number(2.0)],
        [Bool(true), Bool(true), Bool(true), Bool(false), s("")],
    ])
}

/// Asserts the fast path equals the interpreter on `dir`, and returns the matches.
fn check(expr: &str, dir: &Directory) -> Matches {
    let selector = match Selector::compile(expr, &attributes()) {
        Ok(s) => s,
        Err(e) => panic!("`{expr}` does not compile: {e}"),
    };
    let fast = selector.matches(dir);
    let slow = match interpret_all(expr, dir) {
        Ok(m) => m,
        Err(e) => panic!("`{expr}` does not interpret: {e}"),
    };
    assert_eq!(fast, slow, "`{expr}`: fast path (left) differs from the interpreter (right)");
    for i in 0..dir.len() {
        match selector.matches_user(dir, i) {
            Ok(m) => assert_eq!(m, fast.contains(i), "`{expr}` user {i}"),
            Err(_) => assert!(fast.errors().contains(&i), "`{expr}` user {i} should be an error"),
        }
    }
    fast
}

/// Matched and errored positions.
fn outcome(expr: &str, dir: &Directory) -> (Vec<usize>, Vec<usize>) {
    let m = check(expr, dir);
    (m.iter_ones().collect(), m.errors().to_vec())
}

#[test]
fn equality_with_a_string_is_false_for_other_types_and_fails_when_missing() {
    let dir = sample();
    assert_eq!(outcome(r#"user.department == "Engineering""#, &dir), (vec![0, 3], vec![2]));
    assert_eq!(outcome(r#""Engineering" == user.department"#, &dir), (vec![0, 3], vec![2]));
    assert_eq!(outcome(r#"user.department != "Engineering""#, &dir), (vec![1, 4, 5], vec![2]));
    assert_eq!(outcome(r#"user.department == "Nobody""#, &dir), (vec![], vec![2]));
}

#[test]
fn in_a_list_of_strings_tests_membership() {
    let dir = sample();
    assert_eq!(outcome(r#"user.department in ["Sales", "Engineering"]"#, &dir), (vec![0, 1, 3], vec![2]));
    assert_eq!(outcome(r#"user.department in []"#, &dir), (vec![], vec![2]));
}

#[test]
fn a_string_in_a_list_attribute_fails_on_non_lists() {
    let dir = sample();
    assert_eq!(outcome(r#""eng" in user.idp_groups"#, &dir), (vec![0, 3], vec![2, 4, 5]));
    assert_eq!(outcome(r#""nobody" in user.idp_groups"#, &dir), (vec![], vec![2, 4, 5]));
}

#[test]
fn string_methods_fail_on_non_strings() {
    let dir = sample();
    assert_eq!(outcome(r#"user.title.startsWith("Intern")"#, &dir), (vec![1, 3], vec![2, 4]));
    assert_eq!(outcome(r#"user.title.endsWith("er")"#, &dir), (vec![0], vec![2, 4]));
    assert_eq!(outcome(r#"user.title.contains("ngin")"#, &dir), (vec![0, 3], vec![2, 4]));
    assert_eq!(outcome(r#"user.title.contains("")"#, &dir), (vec![0, 1, 3, 5], vec![2, 4]));
    assert_eq!(outcome(r#"user.email.endsWith("@corp.example")"#, &dir), (vec![0, 1, 2, 3, 4, 5], vec![]));
}

#[test]
fn has_never_fails_and_a_bare_attribute_must_be_a_bool() {
    let dir = sample();
    assert_eq!(outcome("has(user.department)", &dir), (vec![0, 1, 3, 4, 5], vec![]));
    assert_eq!(outcome("has(user.email)", &dir), (vec![0, 1, 2, 3, 4, 5], vec![]));
    assert_eq!(outcome("user.active", &dir), (vec![0, 3, 5], vec![2, 4]));
    assert_eq!(outcome("!user.active", &dir), (vec![1], vec![2, 4]));
}

#[test]
fn and_or_absorb_errors_both_ways() {
    let dir = sample();
    // User 2 lacks everything: `false && error` and `error && false` are both false.
    let (m, e) = outcome(r#"user.department == "Sales" && user.title == "Intern""#, &dir);
    assert_eq!((m, e), (vec![1], vec![2]));
    assert_eq!(outcome(r#"has(user.title) && user.title == "Intern""#, &dir), (vec![1], vec![]));
    assert_eq!(outcome(r#"user.title == "Intern" && has(user.title)"#, &dir), (vec![1], vec![]));
    assert_eq!(outcome(r#"!has(user.title) || user.title == "Intern""#, &dir), (vec![1, 2], vec![]));
    assert_eq!(outcome(r#"user.title == "Intern" || !has(user.title)"#, &dir), (vec![1, 2], vec![]));
    assert_eq!(outcome("true || user.active", &dir), ((0..6).collect(), vec![]));
    assert_eq!(outcome("false && user.active", &dir), (vec![], vec![]));
    assert_eq!(outcome("(true)", &dir), ((0..6).collect(), vec![]));
}

#[test]
fn the_conditional_fails_on_a_non_bool_condition() {
    let dir = sample();
    let (m, e) = outcome(r#"user.active ? user.department == "Engineering" : true"#, &dir);
    assert_eq!((m, e), (vec![0, 1, 3], vec![2, 4]));
}

#[test]
fn other_expressions_are_memoised_with_the_same_results() {
    let dir = sample();
    assert_eq!(outcome("user.level >= 3.0", &dir), (vec![0, 3], vec![2, 4, 5]));
    assert_eq!(outcome(r#"user.idp_groups.exists(g, g.startsWith("adm"))"#, &dir).0, vec![0]);
    assert_eq!(outcome("size(user) > 5", &dir), (vec![0, 1, 3, 4, 5], vec![]));
    assert_eq!(outcome(r#"user["department"] == "Sales""#, &dir), (vec![1], vec![2]));
    assert_eq!(outcome("user.department == user.title", &dir), (vec![], vec![2]));
    assert_eq!(
        outcome(r#"user.level == 3.0 && user.department.startsWith("Eng")"#, &dir),
        (vec![0], vec![2])
    );
    // A value that is not a bool is an error, like any failed evaluation.
    assert_eq!(outcome("user.department", &dir), (vec![5], (0..5).collect()));
    assert_eq!(outcome("1", &dir), (vec![], (0..6).collect()));
    assert_eq!(outcome(r#"[1].exists(user, user == 1)"#, &dir), ((0..6).collect(), vec![]));
}

#[test]
fn compile_rejects_long_invalid_and_unknown_selectors() {
    let attrs = attributes();
    let long = format!("user.department == \"{}\"", "x".repeat(crate::model::MAX_CEL_LEN));
    assert!(matches!(Selector::compile(&long, &attrs), Err(SelectError::TooLong { .. })));
    assert!(matches!(interpret_all(&long, &sample()), Err(SelectError::TooLong { .. })));
    // Far past the limit: must be refused before the parser sees it.
    let huge = "1 + ".repeat(25_000) + "1";
    assert!(matches!(Selector::compile(&huge, &attrs), Err(SelectError::TooLong { .. })));
    assert!(matches!(Selector::compile("user.department ==", &attrs), Err(SelectError::Syntax { .. })));
    let err = Selector::compile(r#"user.departement == "x""#, &attrs).err();
    assert_eq!(err, Some(SelectError::UnknownAttribute { name: "departement".into() }));
    assert!(Selector::compile(r#"user.idp_groups.exists(user, user == "x")"#, &attrs).is_ok());
}

#[test]
fn the_deepest_selector_within_the_limit_runs_on_the_callers_stack() {
    // 1,000 nested negations: deep for the parser and the interpreter; the entry
    // points move CEL onto a large stack, so a small test thread is enough.
    let expr = format!("{}true", "!".repeat(crate::model::MAX_CEL_LEN - 4));
    let dir = sample();
    let m = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || {
            let fast = Selector::compile(&expr, &attributes()).map(|s| s.matches(&dir));
            (fast, interpret_all(&expr, &dir))
        })
        .map(|h| h.join());
    let Ok(Ok((Ok(fast), Ok(slow)))) = m else { panic!("evaluation failed") };
    assert_eq!(fast, slow);
    assert_eq!(fast.count(), 6);
}

#[test]
fn matches_all_equals_one_by_one_and_matches_user_explains_failures() {
    let dir = sample();
    let exprs = [r#"user.department == "Sales""#, "user.level > 2.0", "has(user.title)"];
    let selectors: Vec<Selector> =
        exprs.iter().filter_map(|e| Selector::compile(e, &attributes()).ok()).collect();
    let all = matches_all(&selectors, &dir);
    for (s, m) in selectors.iter().zip(&all) {
        assert_eq!(&s.matches(&dir), m);
    }
    let err = selectors[0].matches_user(&dir, 2).err();
    assert!(
        matches!(&err, Some(SelectError::Eval { user, message }) if user == "u2@corp.example" && message.contains("department"))
    );
    assert_eq!(selectors[0].matches_user(&dir, 99), Err(SelectError::NoSuchUser(99)));
    assert!(Directory::default().is_empty() && matches_all(&selectors, &Directory::default())[0].is_empty());
}

// Random directories and expressions: the fast path must equal the interpreter exactly.

const STRINGS: [&str; 5] = ["a", "b", "ab", "ba", ""];
const FIELDS: [&str; 6] = ["active", "department", "idp_groups", "level", "title", "email"];

fn value() -> impl Strategy<Value = AttrValue> {
    prop_oneof![
        2 => Just(AttrValue::Missing),
        4 => proptest::sample::select(&STRINGS[..]).prop_map(s),
        2 => proptest::collection::vec(proptest::sample::select(&STRINGS[..]), 0..3).prop_map(|v| list(&v)),
        1 => proptest::sample::select(vec![0.0, 1.0, 2.5]).prop_map(AttrValue::Number),
        1 => any::<bool>().prop_map(AttrValue::Bool),
    ]
}

fn row() -> impl Strategy<Value = [AttrValue; 5]> {
    [value(), value(), value(), value(), value()]
}

fn lit() -> impl Strategy<Value = String> {
    proptest::sample::select(&STRINGS[..]).prop_map(|s| format!("{s:?}"))
}

fn field() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(&FIELDS[..])
}

fn atom() -> impl Strategy<Value = String> {
    prop_oneof![
        (field(), lit()).prop_map(|(f, l)| format!("user.{f} == {l}")),
        (field(), lit()).prop_map(|(f, l)| format!("{l} == user.{f}")),
        (field(), lit()).prop_map(|(f, l)| format!("user.{f} != {l}")),
        (field(), proptest::collection::vec(lit(), 0..3))
            .prop_map(|(f, l)| format!("user.{f} in [{}]", l.join(", "))),
        (lit(), field()).prop_map(|(l, f)| format!("{l} in user.{f}")),
        (field(), lit(), proptest::sample::select(vec!["startsWith", "endsWith", "contains"]))
            .prop_map(|(f, l, m)| format!("user.{f}.{m}({l})")),
        field().prop_map(|f| format!("has(user.{f})")),
        field().prop_map(|f| format!("user.{f}")),
        Just("true".to_owned()),
        Just("false".to_owned()),
        // Constructs the fast path leaves to the interpreter.
        field().prop_map(|f| format!("user.{f} > 1.0")),
        field().prop_map(|f| format!("user.{f} == 1.0")),
        field().prop_map(|f| format!("size(user.{f}) >= 1")),
        (field(), field()).prop_map(|(f, g)| format!("user.{f} == user.{g}")),
        (field(), lit()).prop_map(|(f, l)| format!("user.{f} in [{l}, 1.0]")),
        field().prop_map(|f| format!("user.{f}.exists(x, x == \"a\")")),
        (field(), loop_body(), proptest::sample::select(vec!["exists", "all", "exists_one"]))
            .prop_map(|(f, b, m)| format!("user.{f}.{m}(x, {b})")),
        (field(), field()).prop_map(|(f, g)| format!("user.{f}.exists(x, x in user.{g})")),
        field().prop_map(|f| format!("user.{f}.size() == 2")),
        field().prop_map(|f| format!("has(user.{f}) && size(user.{f}) > 1")),
        field().prop_map(|f| format!("user.{f}.all(x, x.startsWith(\"a\")) && size(user.{f}) > 1")),
        field().prop_map(|f| format!("user[\"{f}\"] == \"a\"")),
        Just("size(user) > 4".to_owned()),
        Just("1".to_owned()),
        Just("\"a\"".to_owned()),
    ]
}

/// Bodies of loops over list elements, some failing on strings.
fn loop_body() -> impl Strategy<Value = String> {
    prop_oneof![
        lit().prop_map(|l| format!("x.startsWith({l})")),
        lit().prop_map(|l| format!("x == {l}")),
        Just("x > 1".to_owned()),
        Just("x".to_owned()),
        Just("size(x) == 1 || x > 1".to_owned()),
        Just("x.size() > 0 && x.endsWith(\"b\")".to_owned()),
        Just("[\"a\"].exists(y, y == x)".to_owned()),
    ]
}

fn expr() -> impl Strategy<Value = String> {
    atom().prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} && {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} || {b})")),
            inner.clone().prop_map(|a| format!("!{a}")),
            inner.clone().prop_map(|a| format!("!({a})")),
            (inner.clone(), inner.clone(), inner).prop_map(|(c, a, b)| format!("({c} ? {a} : {b})")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_fast_path_equals_the_interpreter(
        rows in proptest::collection::vec(row(), 0..24),
        repeat in 1usize..3,
        e in expr(),
    ) {
        // Repeated rows make memoised groups with several users.
        let rows: Vec<[AttrValue; 5]> = rows.iter().cycle().take(rows.len() * repeat).cloned().collect();
        let dir = directory(rows);
        let selector = Selector::compile(&e, &attributes()).map_err(|err| TestCaseError::fail(format!("{e}: {err}")))?;
        let fast = selector.matches(&dir);
        let slow = interpret_all(&e, &dir).map_err(|err| TestCaseError::fail(format!("{e}: {err}")))?;
        prop_assert_eq!(fast, slow, "{}", e);
    }
}

/// The memo view chosen for the only field a selector reads.
fn view_of(expr: &str) -> Option<query::View> {
    let selector = Selector::compile(expr, &attributes()).ok()?;
    let mut node = &selector.query;
    loop {
        match node {
            Node::And(a, _) | Node::Or(a, _) => node = a,
            Node::Memo { reads: query::Reads::Fields(fields), .. } => {
                return fields.first().map(|(_, v)| v.clone());
            }
            _ => return None,
        }
    }
}

#[test]
fn memo_keys_are_as_coarse_as_the_expression_allows() {
    use query::View;
    assert!(
        matches!(view_of(r#"user.idp_groups.exists(g, g.startsWith("eng"))"#), Some(View::Classes(l)) if l.len() == 1)
    );
    assert!(matches!(view_of(r#"user.idp_groups.all(g, g != "x")"#), Some(View::Classes(_))));
    assert_eq!(view_of("size(user.idp_groups) > 3"), Some(View::Size));
    assert_eq!(view_of("user.idp_groups.size() > 3 && has(user.idp_groups)"), Some(View::Size));
    // The body reads the user: every list is its own key.
    assert_eq!(view_of("user.idp_groups.exists(g, g == user.email)"), Some(View::Value));
    assert_eq!(view_of(r#"user.idp_groups.exists_one(g, g == "a")"#), Some(View::Value));
    assert_eq!(view_of(r#"user.idp_groups.map(g, g + "x") == ["ax"]"#), Some(View::Value));
    assert_eq!(
        view_of(r#"user.idp_groups.exists(g, g == "a") == (user.idp_groups[0] == "a")"#),
        Some(View::Value)
    );
}

#[test]
fn coarse_memo_keys_give_the_interpreters_answers() {
    use AttrValue::{Missing, Number};
    let rows = vec![
        [Missing, s("x"), list(&["eng-1", "all"]), Missing, Missing],
        [Missing, s("x"), list(&["all", "eng-2"]), Missing, Missing],
        [Missing, s("x"), list(&["ops-1", "all"]), Missing, Missing],
        [Missing, s("x"), list(&["eng-1", "all", "x"]), Missing, Missing],
        [Missing, s("x"), list(&[]), Missing, Missing],
        [Missing, s("x"), s("eng-1"), Missing, Missing],
        [Missing, s("x"), Number(1.0), Missing, Missing],
        [Missing, s("x"), Missing, Missing, Missing],
    ];
    let dir = directory(rows);
    assert_eq!(
        outcome(r#"user.idp_groups.exists(g, g.startsWith("eng"))"#, &dir),
        (vec![0, 1, 3], vec![5, 6, 7])
    );
    assert_eq!(outcome(r#"user.idp_groups.all(g, g.startsWith("eng"))"#, &dir), (vec![4], vec![5, 6, 7]));
    assert_eq!(outcome("size(user.idp_groups) == 2", &dir), (vec![0, 1, 2], vec![6, 7]));
    assert_eq!(outcome("user.idp_groups.exists(g, g > 1)", &dir).1, vec![0, 1, 2, 3, 5, 6, 7]);
}

#[test]
fn selectors_and_indexes_can_be_shared_across_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Selector>();
    shared::<DirectoryIndex<'_>>();
    shared::<Matches>();
    shared::<SelectError>();
}

#[test]
fn email_is_always_the_users_email_even_when_an_attribute_has_that_name() {
    let declared = [("email".to_owned(), AttributeType::String)].into_iter().collect();
    let mut dir = Directory::new(&declared);
    assert!(dir.push(User { email: "a@x".into(), attrs: vec![s("other")] }));
    assert!(dir.push(User { email: "b@x".into(), attrs: vec![AttrValue::Missing] }));
    let attrs = vec![("email".to_owned(), AttributeType::String)];
    for expr in [r#"user.email == "a@x""#, r#"user.email == "other""#, "size(user) == 1", "has(user.email)"] {
        let Ok(selector) = Selector::compile(expr, &attrs) else { panic!("{expr}") };
        assert_eq!(Ok(selector.matches(&dir)), interpret_all(expr, &dir), "{expr}");
    }
    let Ok(selector) = Selector::compile(r#"user.email == "a@x""#, &attrs) else { panic!() };
    assert_eq!(selector.matches(&dir).iter_ones().collect::<Vec<_>>(), vec![0]);
}
