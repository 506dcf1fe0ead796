//! helper match (xt_helper.c): the helper of the connection's master.

pub fn helper(master_helper: Option<&str>, wanted: &str, neg: bool) -> bool {
    match master_helper {
        None => neg,
        Some(h) => (wanted.is_empty() || wanted.starts_with(h)) != neg,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        assert!(super::helper(Some("ftp"), "ftp", false));
        assert!(super::helper(Some("ftp"), "", false));
        assert!(!super::helper(None, "ftp", false));
        assert!(super::helper(None, "ftp", true));
        assert!(!super::helper(Some("irc"), "ftp", false));
    }
}
