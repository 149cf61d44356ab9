//! What a change to an app's config vars did, by key name: the audit log records keys,
//! never values, which may be secrets.

use std::collections::BTreeMap;

/// The keys a change added, changed the value of, and removed, each sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigKeyChanges {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

impl ConfigKeyChanges {
    /// Compares the vars before and after a change.
    pub fn between(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Self {
        let mut changes = Self::default();
        for (key, value) in after {
            match before.get(key) {
                None => changes.added.push(key.clone()),
                Some(old) if old != value => changes.changed.push(key.clone()),
                Some(_) => {}
            }
        }
        changes.removed = before
            .keys()
            .filter(|key| !after.contains_key(*key))
            .cloned()
            .collect();
        changes
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }

    /// For people: `added A, B; removed C`.
    pub fn describe(&self) -> String {
        [
            ("added", &self.added),
            ("changed", &self.changed),
            ("removed", &self.removed),
        ]
        .into_iter()
        .filter(|(_, keys)| !keys.is_empty())
        .map(|(verb, keys)| format!("{verb} {}", keys.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn keys_are_sorted_into_added_changed_and_removed() {
        let before = vars(&[("A", "1"), ("B", "2"), ("C", "3")]);
        let after = vars(&[("A", "1"), ("B", "20"), ("D", "4")]);
        let changes = ConfigKeyChanges::between(&before, &after);
        assert_eq!(changes.added, ["D"]);
        assert_eq!(changes.changed, ["B"]);
        assert_eq!(changes.removed, ["C"]);
        assert_eq!(changes.describe(), "added D; changed B; removed C");
        assert!(!changes.describe().contains('2'), "no value is described");
    }

    #[test]
    fn setting_the_same_values_changes_nothing() {
        let same = vars(&[("A", "1")]);
        assert!(ConfigKeyChanges::between(&same, &same).is_empty());
    }
}
