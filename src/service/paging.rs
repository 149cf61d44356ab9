//! Pages of lists. Every list use case takes a [`PageRequest`] and returns a [`Page`].
//!
//! gRPC clients always get bounded pages (100 by default, at most 1,000), so no answer can
//! outgrow a message limit. REST keeps the full lists Akkeris clients expect unless a page
//! size is asked for; promotion history is always paged, since it only grows.
//!
//! Tokens are opaque to clients: the sort key of the last item returned. A list sorted by
//! a unique key resumes exactly after it, even when items were added or removed between
//! pages.

use crate::error::{Error, Result};

/// Items per page when a bounded request names no size.
pub const DEFAULT_PAGE_SIZE: u64 = 100;
/// The most items any page holds.
pub const MAX_PAGE_SIZE: u64 = 1000;

const TOKEN_PREFIX: &str = "p1.";

/// Which page of a list to return.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// `None`: the whole list.
    limit: Option<u64>,
    /// The sort key to resume after.
    after: Option<String>,
}

impl PageRequest {
    /// A bounded page: `size` 0 means the default; above the maximum means the maximum.
    pub fn bounded(size: u64, token: &str) -> Result<Self> {
        let limit = match size {
            0 => DEFAULT_PAGE_SIZE,
            size => size.min(MAX_PAGE_SIZE),
        };
        Ok(Self {
            limit: Some(limit),
            after: decode(token)?,
        })
    }

    /// The whole list unless a size is given (0 also means the whole list, as Akkeris
    /// clients send it); a size is capped at the maximum.
    pub fn whole_unless_sized(size: Option<u64>, token: Option<&str>) -> Result<Self> {
        Ok(Self {
            limit: size
                .filter(|size| *size > 0)
                .map(|size| size.min(MAX_PAGE_SIZE)),
            after: decode(token.unwrap_or_default())?,
        })
    }

    /// Every item: for internal callers.
    pub fn everything() -> Self {
        Self::default()
    }

    /// The key to resume after, as issued in a token.
    pub fn after(&self) -> Option<&str> {
        self.after.as_deref()
    }

    /// How many rows to fetch to know whether another page follows.
    pub fn fetch_limit(&self) -> Option<u64> {
        self.limit.map(|limit| limit + 1)
    }

    /// Cuts `items` (sorted by `key`, all after [`PageRequest::after`]) to one page.
    pub fn finish<T>(&self, mut items: Vec<T>, key: impl Fn(&T) -> String) -> Page<T> {
        let next_page_token = match self.limit {
            Some(limit) if items.len() as u64 > limit => {
                items.truncate(limit as usize);
                items.last().map(|last| encode(&key(last)))
            }
            _ => None,
        };
        Page {
            items,
            next_page_token,
        }
    }

    /// One page of an in-memory list sorted ascending by a unique `key`.
    pub fn page_of_sorted<T>(&self, items: Vec<T>, key: impl Fn(&T) -> String) -> Page<T> {
        let start = match &self.after {
            Some(after) => items.partition_point(|item| key(item).as_str() <= after.as_str()),
            None => 0,
        };
        let mut items = items;
        items.drain(..start);
        if let Some(limit) = self.fetch_limit() {
            items.truncate(limit as usize);
        }
        self.finish(items, key)
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass back as `page_token` for the next page; `None` on the last one.
    pub next_page_token: Option<String>,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_page_token: self.next_page_token,
        }
    }
}

fn encode(key: &str) -> String {
    format!("{TOKEN_PREFIX}{}", hex::encode(key.as_bytes()))
}

fn decode(token: &str) -> Result<Option<String>> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || Error::invalid("page_token", "is not a token this server issued");
    let hex = token.strip_prefix(TOKEN_PREFIX).ok_or_else(invalid)?;
    let bytes = hex::decode(hex).map_err(|_| invalid())?;
    String::from_utf8(bytes).map(Some).map_err(|_| invalid())
}

/// A sort key of several parts that orders as the tuple does. Parts are names and
/// numbers that never contain the separator.
pub fn compound_key(parts: &[&str]) -> String {
    parts.join("\u{1}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("name-{i:04}")).collect()
    }

    #[test]
    fn pages_walk_a_sorted_list_exactly_once() {
        let all = names(250);
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let request = PageRequest::bounded(0, &token).unwrap();
            let page = request.page_of_sorted(all.clone(), |name| name.clone());
            assert!(page.items.len() <= DEFAULT_PAGE_SIZE as usize);
            seen.extend(page.items);
            match page.next_page_token {
                Some(next) => token = next,
                None => break,
            }
        }
        assert_eq!(seen, all);
    }

    #[test]
    fn sizes_are_defaulted_and_capped() {
        let all = names(1500);
        let page = PageRequest::bounded(5000, "")
            .unwrap()
            .page_of_sorted(all.clone(), |n| n.clone());
        assert_eq!(page.items.len(), MAX_PAGE_SIZE as usize);
        let whole = PageRequest::whole_unless_sized(None, None)
            .unwrap()
            .page_of_sorted(all.clone(), |n| n.clone());
        assert_eq!(whole.items.len(), 1500);
        assert_eq!(whole.next_page_token, None);
        let exact = PageRequest::bounded(1500, "")
            .unwrap()
            .page_of_sorted(names(1000), |n| n.clone());
        assert_eq!(exact.next_page_token, None, "no empty last page");
    }

    #[test]
    fn foreign_tokens_are_refused() {
        for bad in ["abc", "p1.zz", "p1.ff", "12_3f"] {
            let error = PageRequest::bounded(0, bad).unwrap_err();
            assert!(error.to_string().contains("page_token"), "{bad}: {error}");
        }
    }

    #[test]
    fn a_removed_item_does_not_shift_the_next_page() {
        let all = names(10);
        let first = PageRequest::bounded(3, "")
            .unwrap()
            .page_of_sorted(all.clone(), |n| n.clone());
        let mut fewer = all.clone();
        fewer.remove(1);
        let token = first.next_page_token.unwrap();
        let second = PageRequest::bounded(3, &token)
            .unwrap()
            .page_of_sorted(fewer, |n| n.clone());
        assert_eq!(second.items, ["name-0003", "name-0004", "name-0005"]);
    }
}
