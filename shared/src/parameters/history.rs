//! How long a parameter has held its current value, from its version history: a value
//! re-put unchanged (a retried publish, an operator making sure) does not move the moment
//! it was first set.

/// One version of a parameter, as its history lists it (oldest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterVersion {
    /// The value of this version.
    pub value: String,
    /// LastModifiedDate of this version, epoch milliseconds.
    pub modified_ms: Option<i64>,
}

/// A parameter's current value and since when it has held it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldValue {
    /// The current value.
    pub value: String,
    /// When the earliest of the latest unbroken run of versions with this value was
    /// written; `None` when Parameter Store gave no time.
    pub since_ms: Option<i64>,
}

/// The current value of a history listed oldest first, and since when it has held it;
/// `None` for an empty history.
pub fn held_since(history: &[ParameterVersion]) -> Option<HeldValue> {
    let current = history.last()?;
    let first_of_run = history
        .iter()
        .rev()
        .take_while(|version| version.value == current.value)
        .last()
        .unwrap_or(current);
    Some(HeldValue {
        value: current.value.clone(),
        since_ms: first_of_run.modified_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(value: &str, at: i64) -> ParameterVersion {
        ParameterVersion {
            value: value.into(),
            modified_ms: Some(at),
        }
    }

    #[test]
    fn a_value_re_put_unchanged_is_held_since_it_was_first_set() {
        let history = [
            v("us-east-1", 10),
            v("us-west-2", 20),
            v("us-west-2", 30),
            v("us-west-2", 40),
        ];
        assert_eq!(
            held_since(&history),
            Some(HeldValue {
                value: "us-west-2".into(),
                since_ms: Some(20)
            })
        );
    }

    #[test]
    fn a_switch_back_starts_a_new_run() {
        let history = [v("us-east-1", 10), v("us-west-2", 20), v("us-east-1", 30)];
        assert_eq!(held_since(&history).unwrap().since_ms, Some(30));
        assert_eq!(held_since(&[]), None);
    }
}
