//! Configuration from the environment, read once at start-up.

use std::str::FromStr;

use serde::Serialize;

/// How the function finds the target groups the instance is registered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Discovery {
    /// The groups named in the instance's tag.
    Tag,
    /// Every instance- and ip-type group in the instance's VPC.
    Scan,
    /// The groups attached to the instance's Auto Scaling group.
    Asg,
    /// `Tag` when the tag is present, else `Asg` when the instance belongs to an Auto Scaling
    /// group, else `Scan`.
    Auto,
}

impl FromStr for Discovery {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "tag" => Ok(Discovery::Tag),
            "scan" => Ok(Discovery::Scan),
            "asg" => Ok(Discovery::Asg),
            "auto" | "" => Ok(Discovery::Auto),
            other => Err(format!("DISCOVERY is {other:?}; expected tag, asg, scan or auto")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub discovery: Discovery,
    /// Tag holding one or more target group ARNs (the seed's `loadBalancerTargetGroup`).
    pub target_group_tag_key: String,
    /// How many target groups are described (and deregistered from) at once.
    pub scan_concurrency: usize,
    /// Calls per second (and bursts) the function allows itself against the ELB API.
    pub pacing: Pacing,
    /// Detach the instance from its Auto Scaling group (desired capacity kept) before draining.
    pub detach_from_asg: bool,
    /// How long a VPC's list of target groups is reused by later drains in this environment.
    pub target_group_cache_ttl: std::time::Duration,
    /// Where drain summaries are published (`NOTICES_TOPIC_ARN`).
    pub notices_topic_arn: Option<String>,
    /// The lifecycle hooks this function owns (`LIFECYCLE_HOOK_NAMES`, comma-separated). An
    /// action of any other hook belongs to another tool and is left alone; none, the default,
    /// means no action is ever completed.
    pub lifecycle_hook_names: Vec<String>,
    /// On a rebalance recommendation, the healthy targets each group keeps
    /// (`REBALANCE_KEEP_HEALTHY`); 0 drains everything, as for an interruption.
    pub rebalance_keep_healthy: usize,
    /// The DynamoDB table holding the account's ELB budget (`ELB_BUDGET_TABLE`), shared by every
    /// invocation; none: each invocation keeps its own.
    pub elb_budget_table: Option<String>,
}

/// The function's own ELB budgets: `ELB_DESCRIBE_RATE`/`ELB_DESCRIBE_BURST` and
/// `ELB_DEREGISTER_RATE`/`ELB_DEREGISTER_BURST`. The defaults are half of what the API allows
/// every caller of the account together (describe calls: 40 at once, refilled at 10 a second;
/// deregistrations: taken as 20 at 4 a second), so the console and other tools keep working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    pub describe_rate: u32,
    pub describe_burst: u32,
    pub deregister_rate: u32,
    pub deregister_burst: u32,
    /// A call to the budget table slower than this fails it for the invocation
    /// (`ELB_BUDGET_TABLE_TIMEOUT_MS`).
    pub budget_table_timeout: std::time::Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            describe_rate: 5,
            describe_burst: 20,
            deregister_rate: 2,
            deregister_burst: 10,
            budget_table_timeout: std::time::Duration::from_millis(250),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            discovery: Discovery::Auto,
            target_group_tag_key: "loadBalancerTargetGroup".into(),
            scan_concurrency: 8,
            pacing: Pacing::default(),
            detach_from_asg: false,
            target_group_cache_ttl: std::time::Duration::from_secs(30),
            notices_topic_arn: None,
            lifecycle_hook_names: Vec::new(),
            rebalance_keep_healthy: 1,
            elb_budget_table: None,
        }
    }
}

impl Settings {
    /// Reads the settings the README lists through `lookup` (the environment, at init).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let env = shared::settings::Lookup::new(lookup);
        let defaults = Settings::default();
        let discovery = match env.text("DISCOVERY") {
            Some(text) => text.parse()?,
            None => defaults.discovery,
        };
        let pacing =
            Pacing {
                describe_rate: env.positive_as("ELB_DESCRIBE_RATE", defaults.pacing.describe_rate)?,
                describe_burst: env.positive_as("ELB_DESCRIBE_BURST", defaults.pacing.describe_burst)?,
                deregister_rate: env.positive_as("ELB_DEREGISTER_RATE", defaults.pacing.deregister_rate)?,
                deregister_burst: env.positive_as("ELB_DEREGISTER_BURST", defaults.pacing.deregister_burst)?,
                budget_table_timeout: std::time::Duration::from_millis(env.positive_as(
                    "ELB_BUDGET_TABLE_TIMEOUT_MS",
                    defaults.pacing.budget_table_timeout.as_millis() as u64,
                )?),
            };
        Ok(Settings {
            discovery,
            // Exactly as set: a tag key may begin or end with a space.
            target_group_tag_key: env
                .raw("TARGET_GROUP_TAG_KEY")
                .filter(|key| !key.trim().is_empty())
                .unwrap_or(defaults.target_group_tag_key),
            scan_concurrency: env.positive_as("SCAN_CONCURRENCY", defaults.scan_concurrency)?,
            pacing,
            detach_from_asg: env.flag("DETACH_FROM_ASG", defaults.detach_from_asg)?,
            target_group_cache_ttl: env.seconds("TARGET_GROUP_CACHE_SECONDS", defaults.target_group_cache_ttl)?,
            notices_topic_arn: env.text("NOTICES_TOPIC_ARN"),
            lifecycle_hook_names: env
                .text("LIFECYCLE_HOOK_NAMES")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(str::to_owned)
                .collect(),
            rebalance_keep_healthy: env
                .whole("REBALANCE_KEEP_HEALTHY")?
                .map_or(Ok(defaults.rebalance_keep_healthy), usize::try_from)
                .map_err(|_| "REBALANCE_KEEP_HEALTHY is too large".to_owned())?,
            elb_budget_table: env.text("ELB_BUDGET_TABLE"),
        })
    }

    /// Whether a lifecycle action of `hook` is this function's to drain and complete.
    pub fn owns_hook(&self, hook: &str) -> bool {
        self.lifecycle_hook_names.iter().any(|name| name == hook)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(Settings::from_lookup(|_| None).unwrap(), Settings::default());
        let settings = Settings::from_lookup(|name| match name {
            "DISCOVERY" => Some("Scan".into()),
            "TARGET_GROUP_TAG_KEY" => Some("drain-from".into()),
            "SCAN_CONCURRENCY" => Some("3".into()),
            "ELB_DESCRIBE_RATE" => Some("9".into()),
            "ELB_DEREGISTER_BURST" => Some("4".into()),
            "DETACH_FROM_ASG" => Some("True".into()),
            "TARGET_GROUP_CACHE_SECONDS" => Some("0".into()),
            "LIFECYCLE_HOOK_NAMES" => Some(" drain, ,ours-too ".into()),
            "REBALANCE_KEEP_HEALTHY" => Some("2".into()),
            "ELB_BUDGET_TABLE" => Some("ops-elb-budget".into()),
            "ELB_BUDGET_TABLE_TIMEOUT_MS" => Some("400".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!((settings.pacing.describe_rate, settings.pacing.describe_burst), (9, 20));
        assert_eq!((settings.pacing.deregister_rate, settings.pacing.deregister_burst), (2, 4));
        assert_eq!(settings.discovery, Discovery::Scan);
        assert_eq!(settings.target_group_tag_key, "drain-from");
        assert_eq!(settings.scan_concurrency, 3);
        assert!(settings.detach_from_asg);
        assert_eq!(settings.target_group_cache_ttl, std::time::Duration::ZERO);
        assert_eq!(settings.lifecycle_hook_names, ["drain", "ours-too"]);
        assert_eq!((settings.rebalance_keep_healthy, Settings::default().rebalance_keep_healthy), (2, 1));
        assert_eq!(settings.elb_budget_table.as_deref(), Some("ops-elb-budget"));
        assert_eq!(settings.pacing.budget_table_timeout, std::time::Duration::from_millis(400));
        assert!(settings.owns_hook("ours-too") && !settings.owns_hook("other-team-hook"));
        assert!(!Settings::default().owns_hook("drain"), "no hook is owned unless named");
        assert_eq!(
            Settings::from_lookup(|n| (n == "DISCOVERY").then(|| "ASG".into())).unwrap().discovery,
            Discovery::Asg
        );
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        let err = Settings::from_lookup(|n| (n == "DISCOVERY").then(|| "everything".into())).unwrap_err();
        assert!(err.contains("DISCOVERY"));
        let err = Settings::from_lookup(|n| (n == "SCAN_CONCURRENCY").then(|| "0".into())).unwrap_err();
        assert!(err.contains("SCAN_CONCURRENCY"));
        let err = Settings::from_lookup(|n| (n == "ELB_DEREGISTER_RATE").then(|| "fast".into())).unwrap_err();
        assert!(err.contains("ELB_DEREGISTER_RATE"));
        let err = Settings::from_lookup(|n| (n == "DETACH_FROM_ASG").then(|| "yes please".into())).unwrap_err();
        assert!(err.contains("DETACH_FROM_ASG"));
    }
}
