//! The lines `SHOW GRANTS` prints for one MySQL/MariaDB account, taken apart so they can be
//! stated again for the clone and compared between the two users. Pure text: no connection.
//!
//! The forms handled: `GRANT <privileges or role> TO <account> [WITH GRANT|ADMIN OPTION]` (both
//! servers), `REVOKE <privileges> ON <db>.* FROM <account>` (MySQL 8's partial revokes) and
//! `SET DEFAULT ROLE <role> FOR <account>` (MariaDB's default role). Anything else is refused,
//! so a form the function does not know is never silently left off the clone.

use std::collections::BTreeSet;

/// One line with its grantee taken out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantLine {
    /// What the line grants, revokes or sets, up to the grantee: never a password.
    what: String,
    /// ` TO `, ` FROM ` or ` FOR `.
    connector: &'static str,
    /// ` WITH GRANT OPTION`, ` WITH ADMIN OPTION`, or nothing. Password, `REQUIRE` and resource
    /// clauses after the grantee are dropped: the clone has its own password, and its TLS
    /// requirement is set on its own (`mysql_clone`).
    option: &'static str,
}

/// The ways a server prints an account: backticks (MariaDB, MySQL 8) or single quotes (MySQL
/// 5.7), with the quote inside a name doubled or, on 5.7, escaped.
fn printed_forms(user: &str, host: &str) -> [String; 3] {
    [
        format!("`{}`@`{}`", user.replace('`', "``"), host.replace('`', "``")),
        format!("'{}'@'{}'", user.replace('\'', "''"), host.replace('\'', "''")),
        format!("'{}'@'{}'", user.replace('\'', "\\'"), host.replace('\'', "\\'")),
    ]
}

impl GrantLine {
    /// Takes `line` apart, `user`@`host` being the account it was printed for. `Ok(None)` for a
    /// line that grants nothing (`GRANT USAGE ON *.*`, which every account has). The error names
    /// the line's first words only (a line can carry a password hash).
    pub fn parse(line: &str, user: &str, host: &str) -> Result<Option<GrantLine>, String> {
        let connector = if line.starts_with("GRANT ") {
            " TO "
        } else if line.starts_with("REVOKE ") {
            " FROM "
        } else if line.starts_with("SET DEFAULT ROLE ") {
            " FOR "
        } else {
            return Err(format!("a SHOW GRANTS line of a form the function cannot copy ({})", first_words(line)));
        };
        // The first place the account is printed: what follows it (a password hash, a REQUIRE
        // SUBJECT of the DBA's) is never searched.
        let cut = printed_forms(user, host)
            .iter()
            .filter_map(|account| top_level_find(line, &format!("{connector}{account}")).map(|at| (at, account.len())))
            .min();
        let Some((at, account_len)) = cut else {
            return Err(format!("a SHOW GRANTS line whose grantee could not be found ({})", first_words(line)));
        };
        let what = &line[..at];
        if what.starts_with("GRANT USAGE ON *.*") {
            return Ok(None);
        }
        // The option is read from the WITH clause alone, outside any quoted text after the grantee.
        let rest = &line[at + connector.len() + account_len..];
        let with_clause = top_level_find(rest, " WITH ").map(|at| &rest[at..]).unwrap_or("");
        let option = if with_clause.starts_with(" WITH GRANT OPTION") {
            " WITH GRANT OPTION"
        } else if with_clause.starts_with(" WITH ADMIN OPTION") {
            " WITH ADMIN OPTION"
        } else {
            ""
        };
        Ok(Some(GrantLine { what: what.to_owned(), connector, option }))
    }

    /// The line as one entry per privilege (`GRANT SELECT ON `app`.*`), so two accounts that
    /// hold the same give the same entries whatever lines the server merged, a difference names
    /// the one privilege, and the clone can be given or relieved of one privilege at a time.
    pub fn entries(&self) -> Vec<GrantEntry> {
        let entry = |privilege: &str, object: &str| GrantEntry {
            verb: self.verb(),
            privilege: privilege.to_owned(),
            object: object.to_owned(),
            option: self.option,
        };
        let body = match self.verb() {
            Verb::Grant => self.what.strip_prefix("GRANT "),
            Verb::PartialRevoke => self.what.strip_prefix("REVOKE "),
            Verb::DefaultRole => self.what.strip_prefix("SET DEFAULT ROLE "),
        };
        let Some(body) = body else { return vec![entry(&self.what, "")] };
        if self.verb() == Verb::DefaultRole {
            return vec![entry(body, "")];
        }
        // A role grant (no ON) may name several roles: one entry each.
        let Some(on) = top_level_find(body, " ON ") else {
            return split_top_level(body).iter().map(|role| entry(role, "")).collect();
        };
        let object = &body[on..];
        split_top_level(&body[..on])
            .iter()
            .flat_map(|privilege| per_column(privilege))
            .map(|p| entry(&p, object))
            .collect()
    }

    fn verb(&self) -> Verb {
        match self.connector {
            " TO " => Verb::Grant,
            " FROM " => Verb::PartialRevoke,
            _ => Verb::DefaultRole,
        }
    }

    /// The line's entries with no grantee, as they compare.
    pub fn normalized(&self) -> Vec<String> {
        self.entries().iter().map(GrantEntry::normalized).collect()
    }
}

/// Where `needle` first occurs outside backticks, quotes and parentheses.
pub(super) fn top_level_find(text: &str, needle: &str) -> Option<usize> {
    let (mut depth, mut quote) = (0u32, None::<char>);
    for (at, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '`' | '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth = depth.saturating_sub(1),
            (None, _) if depth == 0 && text[at..].starts_with(needle) => return Some(at),
            _ => {}
        }
    }
    None
}

/// A column privilege (`SELECT (`a`, `b`)`) as one privilege per column, so a clone that must hold
/// fewer columns is relieved of those alone; any other privilege as it is.
fn per_column(privilege: &str) -> Vec<String> {
    let columns = top_level_find(privilege, " (").and_then(|at| {
        let inside = privilege[at + 2..].strip_suffix(')')?;
        Some((&privilege[..at], inside))
    });
    match columns {
        Some((name, inside)) => split_top_level(inside).iter().map(|column| format!("{name} ({column})")).collect(),
        None => vec![privilege.to_owned()],
    }
}

/// A privilege list split at its top-level commas (`SELECT (a, b), INSERT`: two privileges).
fn split_top_level(list: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = list;
    while let Some(at) = top_level_find(rest, ",") {
        parts.push(rest[..at].trim().to_owned());
        rest = &rest[at + 1..];
    }
    parts.push(rest.trim().to_owned());
    parts
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verb {
    Grant,
    /// MySQL 8's partial revoke: a restriction carved out of a broader grant.
    PartialRevoke,
    /// MariaDB's default role.
    DefaultRole,
}

/// One privilege (or role, or default role) an account holds, on one object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GrantEntry {
    pub verb: Verb,
    /// `SELECT`, `SELECT (`a`, `b`)`, `ALL PRIVILEGES`, or a role (`` `reader` ``).
    privilege: String,
    /// ` ON `app`.*`, or empty for a role.
    object: String,
    option: &'static str,
}

impl GrantEntry {
    pub fn normalized(&self) -> String {
        match self.verb {
            Verb::Grant => format!("GRANT {}{} TO <grantee>{}", self.privilege, self.object, self.option),
            Verb::PartialRevoke => format!("REVOKE {}{} FROM <grantee>", self.privilege, self.object),
            Verb::DefaultRole => format!("SET DEFAULT ROLE {} FOR <grantee>", self.privilege),
        }
    }

    /// The statement that gives `account` (quoted) this entry.
    pub fn add_statement(&self, account: &str) -> String {
        match self.verb {
            Verb::Grant => format!("GRANT {}{} TO {account}{}", self.privilege, self.object, self.option),
            Verb::PartialRevoke => format!("REVOKE {}{} FROM {account}", self.privilege, self.object),
            Verb::DefaultRole => format!("SET DEFAULT ROLE {} FOR {account}", self.privilege),
        }
    }

    /// The statement that takes this entry from `account`, given the entries `account` must hold
    /// (`target`): only what differs goes. `None` when nothing is to be run: a default role
    /// (setting the right one replaces it), or a partial revoke whose broader grant the target
    /// does not hold either (taking that grant took the restriction with it; lifting it by
    /// granting would give what the original lacks).
    pub fn remove_statement(&self, account: &str, target: &BTreeSet<GrantEntry>, mariadb: bool) -> Option<String> {
        let same = |option: &'static str| GrantEntry { option, ..self.clone() };
        let option_alone = !self.option.is_empty() && target.contains(&same(""));
        match self.verb {
            // PROXY takes no GRANT OPTION in a REVOKE, beside it or alone: the whole grant goes
            // (and the next pass gives it again without the option, if the original holds that).
            Verb::Grant if self.privilege == "PROXY" => {
                Some(format!("REVOKE {}{} FROM {account}", self.privilege, self.object))
            }
            // Only the option differs: take the option, keep the privilege. A role's admin option
            // alone can be taken on MariaDB; MySQL 8 has no such statement, so there the role goes
            // and the next pass gives it again without it.
            Verb::Grant if option_alone && !self.object.is_empty() => {
                Some(format!("REVOKE GRANT OPTION{} FROM {account}", self.object))
            }
            Verb::Grant if option_alone && mariadb => {
                Some(format!("REVOKE ADMIN OPTION FOR {} FROM {account}", self.privilege))
            }
            Verb::Grant if self.object.is_empty() => Some(format!("REVOKE {} FROM {account}", self.privilege)),
            Verb::Grant if self.option.is_empty() => {
                Some(format!("REVOKE {}{} FROM {account}", self.privilege, self.object))
            }
            Verb::Grant => Some(format!("REVOKE {}, GRANT OPTION{} FROM {account}", self.privilege, self.object)),
            Verb::PartialRevoke => {
                let broader = target.iter().any(|e| {
                    e.verb == Verb::Grant
                        && e.object == " ON *.*"
                        && (e.privilege == self.privilege || e.privilege == "ALL PRIVILEGES")
                });
                broader.then(|| format!("GRANT {}{} TO {account}", self.privilege, self.object))
            }
            Verb::DefaultRole => None,
        }
    }
}

fn first_words(line: &str) -> String {
    line.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// MySQL 8's `SET DEFAULT ROLE` for `account`, from the roles `mysql.default_roles` lists for
/// the original (each already quoted as `'role'@'host'`); `NONE` when it has none.
pub fn mysql_default_roles_statement(roles: &[String], account: &str) -> String {
    let roles = if roles.is_empty() { "NONE".to_owned() } else { roles.join(", ") };
    format!("SET DEFAULT ROLE {roles} TO {account}")
}

/// The `REQUIRE` clause for an account's TLS columns (`ssl_type`, `ssl_cipher`, `x509_issuer`,
/// `x509_subject`), the three texts made literals by `quote`.
pub fn require_clause(
    ssl_type: &str,
    cipher: &str,
    issuer: &str,
    subject: &str,
    quote: impl Fn(&str) -> String,
) -> String {
    match ssl_type {
        "ANY" => "SSL".into(),
        "X509" => "X509".into(),
        "SPECIFIED" => {
            let mut parts = Vec::new();
            if !subject.is_empty() {
                parts.push(format!("SUBJECT {}", quote(subject)));
            }
            if !issuer.is_empty() {
                parts.push(format!("ISSUER {}", quote(issuer)));
            }
            if !cipher.is_empty() {
                parts.push(format!("CIPHER {}", quote(cipher)));
            }
            if parts.is_empty() {
                "X509".into()
            } else {
                parts.join(" AND ")
            }
        }
        _ => "NONE".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::{mysql_default_roles_statement, require_clause, GrantEntry, GrantLine};

    /// The statements that give the clone `'c'@'%'` what `line` gives its account.
    fn rewrite(line: &str, user: &str, host: &str) -> Option<String> {
        GrantLine::parse(line, user, host)
            .expect("parsed")
            .map(|g| g.entries().iter().map(|entry| entry.add_statement("'c'@'%'")).collect::<Vec<_>>().join("; "))
    }

    #[test]
    fn mariadb_lines_are_stated_again_for_the_clone() {
        assert_eq!(
            rewrite("GRANT SELECT, INSERT ON `app`.* TO `app`@`%`", "app", "%").as_deref(),
            Some("GRANT SELECT ON `app`.* TO 'c'@'%'; GRANT INSERT ON `app`.* TO 'c'@'%'")
        );
        assert_eq!(
            rewrite("GRANT ALL PRIVILEGES ON `db`.* TO `app`@`%` WITH GRANT OPTION", "app", "%").as_deref(),
            Some("GRANT ALL PRIVILEGES ON `db`.* TO 'c'@'%' WITH GRANT OPTION")
        );
        assert_eq!(rewrite("GRANT `reader` TO `app`@`%`", "app", "%").as_deref(), Some("GRANT `reader` TO 'c'@'%'"));
        assert_eq!(
            rewrite("SET DEFAULT ROLE `reader` FOR `app`@`%`", "app", "%").as_deref(),
            Some("SET DEFAULT ROLE `reader` FOR 'c'@'%'")
        );
        // The USAGE line, whatever it carries, needs nothing.
        assert_eq!(
            rewrite("GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*AB' REQUIRE SSL", "app", "%"),
            None
        );
    }

    #[test]
    fn a_password_clause_after_the_grantee_is_dropped() {
        let line = "GRANT SELECT ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*0123456789ABCDEF' REQUIRE SSL";
        let parsed = GrantLine::parse(line, "app", "%").expect("parsed").expect("a grant");
        assert_eq!(parsed.entries()[0].add_statement("'c'@'%'"), "GRANT SELECT ON *.* TO 'c'@'%'");
        assert!(!parsed.normalized().concat().contains("0123456789"));
    }

    #[test]
    fn the_fingerprint_has_one_entry_per_privilege() {
        let entries = |line: &str| GrantLine::parse(line, "app", "%").unwrap().unwrap().normalized();
        assert_eq!(
            entries("GRANT SELECT (`a`, `b`), INSERT ON `app`.`t` TO `app`@`%` WITH GRANT OPTION"),
            [
                "GRANT SELECT (`a`) ON `app`.`t` TO <grantee> WITH GRANT OPTION",
                "GRANT SELECT (`b`) ON `app`.`t` TO <grantee> WITH GRANT OPTION",
                "GRANT INSERT ON `app`.`t` TO <grantee> WITH GRANT OPTION"
            ]
        );
        assert_eq!(entries("GRANT `reader` TO `app`@`%`"), ["GRANT `reader` TO <grantee>"]);
        assert_eq!(
            entries("REVOKE INSERT, DELETE ON `mysql`.* FROM `app`@`%`"),
            ["REVOKE INSERT ON `mysql`.* FROM <grantee>", "REVOKE DELETE ON `mysql`.* FROM <grantee>"]
        );
        // The same privileges, merged differently, give the same entries.
        let mut one = entries("GRANT SELECT, INSERT ON `app`.* TO `app`@`%`");
        one.sort();
        let mut two =
            [entries("GRANT INSERT ON `app`.* TO `app`@`%`"), entries("GRANT SELECT ON `app`.* TO `app`@`%`")].concat();
        two.sort();
        assert_eq!(one, two);
    }

    // Recorded from MySQL 8.0 with partial_revokes=ON: no local server prints these.
    #[test]
    fn mysql_8_role_grants_and_partial_revokes_are_kept() {
        assert_eq!(
            rewrite("GRANT SELECT, INSERT ON *.* TO `app`@`10.%`", "app", "10.%").as_deref(),
            Some("GRANT SELECT ON *.* TO 'c'@'%'; GRANT INSERT ON *.* TO 'c'@'%'")
        );
        assert_eq!(
            rewrite("REVOKE INSERT ON `mysql`.* FROM `app`@`10.%`", "app", "10.%").as_deref(),
            Some("REVOKE INSERT ON `mysql`.* FROM 'c'@'%'")
        );
        assert_eq!(
            rewrite("GRANT `app_role`@`%` TO `app`@`10.%` WITH ADMIN OPTION", "app", "10.%").as_deref(),
            Some("GRANT `app_role`@`%` TO 'c'@'%' WITH ADMIN OPTION")
        );
        assert_eq!(
            mysql_default_roles_statement(&["'app_role'@'%'".into()], "'c'@'%'"),
            "SET DEFAULT ROLE 'app_role'@'%' TO 'c'@'%'"
        );
        assert_eq!(mysql_default_roles_statement(&[], "'c'@'%'"), "SET DEFAULT ROLE NONE TO 'c'@'%'");
    }

    // MySQL 5.7 quotes accounts with single quotes.
    #[test]
    fn mysql_5_7_quoting_is_understood() {
        assert_eq!(
            rewrite("GRANT SELECT ON `app`.* TO 'o\\'brien'@'%'", "o'brien", "%").as_deref(),
            Some("GRANT SELECT ON `app`.* TO 'c'@'%'")
        );
    }

    #[test]
    fn a_hostile_name_cannot_move_the_cut() {
        // The user's own name holds " TO " and a fake account; the cut is at the real grantee.
        let user = "x` TO `admin`@`%";
        let line = "GRANT SELECT ON `app`.* TO `x`` TO ``admin``@``%`@`%`";
        assert_eq!(rewrite(line, user, "%").as_deref(), Some("GRANT SELECT ON `app`.* TO 'c'@'%'"));
    }

    #[test]
    fn merged_grants_split_into_one_entry_per_role_and_per_column() {
        let entries = |line: &str| GrantLine::parse(line, "app", "%").unwrap().unwrap().normalized();
        assert_eq!(
            entries("GRANT `r1`@`%`,`r2`@`%` TO `app`@`%`"),
            ["GRANT `r1`@`%` TO <grantee>", "GRANT `r2`@`%` TO <grantee>"]
        );
        assert_eq!(
            entries("GRANT SELECT (`a`, `b`), INSERT ON `app`.`t` TO `app`@`%`"),
            [
                "GRANT SELECT (`a`) ON `app`.`t` TO <grantee>",
                "GRANT SELECT (`b`) ON `app`.`t` TO <grantee>",
                "GRANT INSERT ON `app`.`t` TO <grantee>"
            ]
        );
    }

    #[test]
    fn mysql_8_takes_a_roles_admin_option_with_the_role() {
        let entries = |line: &str| GrantLine::parse(line, "app", "%").unwrap().unwrap().entries();
        let admin = &entries("GRANT `reader`@`%` TO `app`@`%` WITH ADMIN OPTION")[0];
        let target: BTreeSet<GrantEntry> = entries("GRANT `reader`@`%` TO `app`@`%`").into_iter().collect();
        assert_eq!(
            admin.remove_statement("'c'@'%'", &target, false).as_deref(),
            Some("REVOKE `reader`@`%` FROM 'c'@'%'")
        );
        let proxy = &entries("GRANT PROXY ON ''@'%' TO `app`@`%` WITH GRANT OPTION")[0];
        let plain: BTreeSet<GrantEntry> = entries("GRANT PROXY ON ''@'%' TO `app`@`%`").into_iter().collect();
        assert_eq!(
            proxy.remove_statement("'c'@'%'", &plain, true).as_deref(),
            Some("REVOKE PROXY ON ''@'%' FROM 'c'@'%'")
        );
    }

    #[test]
    fn a_routine_named_like_a_grantee_cannot_move_the_cut() {
        let line = "GRANT EXECUTE ON PROCEDURE `app`.`p TO 'app'@'%'` TO 'app'@'%'";
        let entry = &GrantLine::parse(line, "app", "%").unwrap().unwrap().entries()[0];
        assert_eq!(entry.add_statement("'c'@'%'"), "GRANT EXECUTE ON PROCEDURE `app`.`p TO 'app'@'%'` TO 'c'@'%'");
    }

    #[test]
    fn text_after_the_grantee_moves_neither_the_cut_nor_the_option() {
        // A DBA's certificate subject quoting a grantee and the option words.
        let line = "GRANT SELECT ON `app`.* TO `app`@`%` REQUIRE SUBJECT '/CN=x TO `app`@`%` WITH GRANT OPTION'";
        let entry = &GrantLine::parse(line, "app", "%").unwrap().unwrap().entries()[0];
        assert_eq!(entry.add_statement("'c'@'%'"), "GRANT SELECT ON `app`.* TO 'c'@'%'");
    }

    #[test]
    fn lines_of_unknown_forms_are_refused_without_their_text() {
        let error = GrantLine::parse("GRANT PROXY ON ''@'' TO `app`@`%` IDENTIFIED BY 'x'", "other", "%").unwrap_err();
        assert!(error.contains("grantee"), "{error}");
        let error = GrantLine::parse("ALTER USER app IDENTIFIED BY 'secret'", "app", "%").unwrap_err();
        assert!(!error.contains("secret"), "{error}");
    }

    #[test]
    fn entries_are_given_and_taken_one_privilege_at_a_time() {
        let entries = |line: &str| GrantLine::parse(line, "app", "%").unwrap().unwrap().entries();
        let select = &entries("GRANT SELECT, INSERT ON `app`.* TO `app`@`%` WITH GRANT OPTION")[0];
        assert_eq!(select.add_statement("'c'@'%'"), "GRANT SELECT ON `app`.* TO 'c'@'%' WITH GRANT OPTION");
        let target = |lines: &[&str]| -> BTreeSet<GrantEntry> { lines.iter().flat_map(|l| entries(l)).collect() };
        let none = BTreeSet::new();
        assert_eq!(
            select.remove_statement("'c'@'%'", &none, true).as_deref(),
            Some("REVOKE SELECT, GRANT OPTION ON `app`.* FROM 'c'@'%'")
        );
        // Only the option differs: only the option goes.
        let without_option = target(&["GRANT SELECT ON `app`.* TO `app`@`%`"]);
        assert_eq!(
            select.remove_statement("'c'@'%'", &without_option, true).as_deref(),
            Some("REVOKE GRANT OPTION ON `app`.* FROM 'c'@'%'")
        );
        let role = &entries("GRANT `reader` TO `app`@`%`")[0];
        assert_eq!(role.remove_statement("'c'@'%'", &none, true).as_deref(), Some("REVOKE `reader` FROM 'c'@'%'"));
        let admin = &entries("GRANT `reader` TO `app`@`%` WITH ADMIN OPTION")[0];
        assert_eq!(
            admin.remove_statement("'c'@'%'", &target(&["GRANT `reader` TO `app`@`%`"]), true).as_deref(),
            Some("REVOKE ADMIN OPTION FOR `reader` FROM 'c'@'%'")
        );
        let proxy = &entries("GRANT PROXY ON ''@'%' TO `app`@`%` WITH GRANT OPTION")[0];
        assert_eq!(
            proxy.remove_statement("'c'@'%'", &none, true).as_deref(),
            Some("REVOKE PROXY ON ''@'%' FROM 'c'@'%'")
        );
        let carve = &entries("REVOKE INSERT ON `mysql`.* FROM `app`@`%`")[0];
        assert_eq!(carve.add_statement("'c'@'%'"), "REVOKE INSERT ON `mysql`.* FROM 'c'@'%'");
        // Lifted only where the original holds the broader grant; never a grant on its own.
        assert_eq!(carve.remove_statement("'c'@'%'", &none, true), None);
        assert_eq!(
            carve.remove_statement("'c'@'%'", &target(&["GRANT INSERT ON *.* TO `app`@`%`"]), true).as_deref(),
            Some("GRANT INSERT ON `mysql`.* TO 'c'@'%'")
        );
        let default = &entries("SET DEFAULT ROLE `reader` FOR `app`@`%`")[0];
        assert_eq!(default.add_statement("'c'@'%'"), "SET DEFAULT ROLE `reader` FOR 'c'@'%'");
        assert_eq!(default.remove_statement("'c'@'%'", &none, true), None);
    }

    #[test]
    fn require_clauses_copy_subject_issuer_and_cipher() {
        let quote = |s: &str| format!("'{s}'");
        assert_eq!(require_clause("ANY", "", "", "", quote), "SSL");
        assert_eq!(require_clause("", "", "", "", quote), "NONE");
        assert_eq!(
            require_clause("SPECIFIED", "", "/CN=ca", "/CN=app", quote),
            "SUBJECT '/CN=app' AND ISSUER '/CN=ca'"
        );
    }
}
