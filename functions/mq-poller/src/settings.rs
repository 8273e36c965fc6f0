//! Configuration from the environment, read once at start-up.

use std::time::Duration;

use crate::store::{BATCH_SIZE, WRITES_IN_FLIGHT};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// One endpoint, or an active/standby pair separated by a comma, tried in order.
    pub broker_urls: Vec<String>,
    /// `broker_urls`, parsed and checked at init.
    pub broker_endpoints: Vec<crate::broker::Endpoint>,
    pub queue_name: String,
    pub table_name: String,
    /// The bucket for bodies too large for an item (claim check); unset, they cannot be stored.
    pub body_bucket: Option<String>,
    pub idle_timeout: Duration,
    pub max_messages: Option<u64>,
    pub ttl_days: Option<u64>,
    /// How long before the invocation's deadline the poll stops taking messages.
    pub deadline_margin: Duration,
    /// Messages the broker may send ahead of our acknowledgements.
    pub prefetch: u16,
    /// Extra CA certificates (PEM) to trust for the broker's TLS, besides the system's.
    pub broker_ca_bundle: Option<shared::tls::ExtraBundle>,
    pub connect_timeout: Duration,
    /// STOMP heart-beats we offer to send, in milliseconds (0: none).
    pub broker_heartbeat_ms: u32,
    /// How long broker credentials read from the secret are used before being read again.
    pub secret_ttl: Duration,
    /// `BROKER_SELECTOR`: a JMS selector ActiveMQ applies to the subscription, so a queue shared
    /// with other consumers is drained only of the messages this function owns.
    pub selector: Option<String>,
    /// The function's memory (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`), in MB.
    pub memory_mb: u64,
    /// `MAX_BYTES_IN_FLIGHT`, when set: the byte budget as given.
    pub max_bytes_in_flight: Option<usize>,
    /// Whether the secrets-cache layer is attached: its process shares the function's memory.
    pub secrets_extension_attached: bool,
}

/// What the secrets-cache extension is given of the function's memory when its layer is
/// attached: its peak RSS measured by `scripts/bench-cold-start` was 8.4 MiB with the secrets a
/// function like this one reads; the rest is room for a cache of a few more.
pub const SECRETS_EXTENSION_MB: u64 = 16;

impl Settings {
    /// What the brokers need to connect, from these settings.
    pub fn connect_options(&self) -> crate::broker::ConnectOptions {
        crate::broker::ConnectOptions {
            endpoints: self.broker_endpoints.clone(),
            queue: self.queue_name.clone(),
            prefetch: self.prefetch_window(),
            byte_budget: self.byte_budget(),
            window_fixed: self.max_messages.is_some(),
            ca_bundle: self.broker_ca_bundle.clone(),
            connect_timeout: self.connect_timeout,
            heartbeat_ms: self.broker_heartbeat_ms,
            selector: self.selector.clone(),
        }
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let env = shared::settings::Lookup::new(lookup);
        let broker_urls: Vec<String> = env
            .text("BROKER_URL")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        // Room for a poll batch of 100 (four BatchWriteItem calls) being written while the next is
        // received.
        let prefetch = env.whole("PREFETCH")?.unwrap_or(200);
        // Every entry is checked now: a bad second URL must not wait for a failover to show.
        let broker_endpoints = crate::broker::parse_endpoints(&broker_urls)?;
        let selector = selector(env.text("BROKER_SELECTOR"), &broker_endpoints)?;
        Ok(Settings {
            broker_urls,
            broker_endpoints,
            // Exactly as set: a queue's name may end in a space, and items are keyed by it.
            queue_name: env.raw("QUEUE_NAME").filter(|q| !q.trim().is_empty()).unwrap_or_else(|| "SAMPLE_QUEUE".into()),
            table_name: env.text("TABLE_NAME").ok_or("TABLE_NAME is not set")?,
            body_bucket: env.text("BODY_BUCKET"),
            idle_timeout: env.millis("IDLE_TIMEOUT_MS", Duration::from_millis(1000))?,
            max_messages: env.whole("MAX_MESSAGES")?.filter(|n| *n > 0),
            ttl_days: env.whole("TTL_DAYS")?.filter(|n| *n > 0),
            deadline_margin: env.millis("DEADLINE_MARGIN_MS", Duration::from_millis(3000))?,
            prefetch: u16::try_from(prefetch.clamp(1, 65535)).unwrap_or(100),
            broker_ca_bundle: shared::tls::ExtraBundle::from_lookup("BROKER_CA_BUNDLE", |name| env.text(name)),
            connect_timeout: env.millis("BROKER_CONNECT_TIMEOUT_MS", Duration::from_millis(5000))?,
            broker_heartbeat_ms: u32::try_from(env.whole("BROKER_HEARTBEAT_MS")?.unwrap_or(10_000))
                .map_err(|_| "BROKER_HEARTBEAT_MS is too large".to_owned())?,
            secret_ttl: env.seconds("BROKER_SECRET_TTL_SECONDS", crate::credentials::DEFAULT_SECRET_TTL)?,
            selector,
            memory_mb: env.positive("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")?.unwrap_or(128),
            max_bytes_in_flight: env
                .positive("MAX_BYTES_IN_FLIGHT")?
                .map(|n| usize::try_from(n).map_err(|_| "MAX_BYTES_IN_FLIGHT is too large".to_owned()))
                .transpose()?,
            secrets_extension_attached: false,
        })
    }

    /// The byte budget: bytes received from the broker and not yet stored stay within it.
    /// `MAX_BYTES_IN_FLIGHT`, or a quarter of the function's memory (less what the secrets-cache
    /// extension takes of it when attached): the rest is the process itself, the SDK's buffers
    /// and the allocator's slack.
    pub fn byte_budget(&self) -> usize {
        if let Some(bytes) = self.max_bytes_in_flight {
            return bytes;
        }
        let extension = if self.secrets_extension_attached { SECRETS_EXTENSION_MB } else { 0 };
        let mb = self.memory_mb.saturating_sub(extension).max(1) / 4;
        usize::try_from(mb.max(1) * 1024 * 1024).unwrap_or(usize::MAX)
    }

    /// The messages the broker may send ahead: `PREFETCH`, but never more than the poll may
    /// take (`MAX_MESSAGES`), so no message is delivered only to be handed back unprocessed,
    /// which would count as a redelivery against it.
    pub fn prefetch_window(&self) -> u16 {
        match self.max_messages {
            Some(max) => self.prefetch.min(u16::try_from(max).unwrap_or(u16::MAX)).max(1),
            None => self.prefetch,
        }
    }

    /// Messages taken per poll batch: enough for [`WRITES_IN_FLIGHT`] full `BatchWriteItem`
    /// calls, but no more than half the prefetch window, so the next batch can be received while
    /// one is written.
    pub fn poll_batch(&self) -> usize {
        (usize::from(self.prefetch_window()) / 2).clamp(1, WRITES_IN_FLIGHT * BATCH_SIZE)
    }
}

/// `BROKER_SELECTOR`, checked: only ActiveMQ's STOMP subscriptions take a selector (RabbitMQ
/// has none, and draining the whole queue instead would take other consumers' messages), and a
/// NUL would end the STOMP frame it travels in (the codec escapes line breaks and colons).
fn selector(value: Option<String>, endpoints: &[crate::broker::Endpoint]) -> Result<Option<String>, String> {
    let Some(selector) = value else { return Ok(None) };
    if let Some(at) = endpoints.iter().position(|e| e.protocol == crate::broker::Protocol::Amqp) {
        return Err(format!(
            "BROKER_SELECTOR is set, but BROKER_URL entry {} of {} is AMQP: RabbitMQ has no selectors (bind a queue of this function's own instead)",
            at + 1,
            endpoints.len()
        ));
    }
    if selector.contains('\0') {
        return Err("BROKER_SELECTOR holds a NUL, which ends a STOMP frame".into());
    }
    // ActiveMQ's header decoder knows no escaped carriage return (it would see a literal `\r`),
    // and takes header lines of 10 KB at most.
    if selector.contains('\r') {
        return Err(
            "BROKER_SELECTOR holds a carriage return, which ActiveMQ would read as the two characters \\r".into()
        );
    }
    if selector.len() > 8192 {
        return Err(format!(
            "BROKER_SELECTOR is {} bytes long; ActiveMQ takes header lines of 10 KB at most, 8192 is the limit here",
            selector.len()
        ));
    }
    Ok(Some(selector))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_selector_is_for_stomp_only_and_never_ends_a_frame() {
        let with = |url: &str, selector: &str| {
            super::Settings::from_lookup(|name| match name {
                "TABLE_NAME" => Some("t".into()),
                "BROKER_URL" => Some(url.into()),
                "BROKER_SELECTOR" => Some(selector.into()),
                _ => None,
            })
        };
        let settings = with("stomp+ssl://b-1.mq.us-east-1.amazonaws.com:61614", "owner = 'us'\nAND kind <> 'x'")
            .expect("a selector over STOMP");
        assert_eq!(settings.connect_options().selector.as_deref(), Some("owner = 'us'\nAND kind <> 'x'"));
        let refused = with("stomp://a:61613,amqps://b:5671", "owner = 'us'").unwrap_err();
        assert!(refused.contains("entry 2 of 2") && refused.contains("RabbitMQ"), "{refused}");
        assert!(with("stomp://a:61613", "owner = 'us'\0SEND").unwrap_err().contains("NUL"));
        assert!(with("stomp://a:61613", "owner = 'u\rs'").unwrap_err().contains("carriage return"));
        assert!(with("stomp://a:61613", &"x".repeat(8193)).unwrap_err().contains("8192"));
    }

    use super::*;

    #[test]
    fn defaults_follow_the_seed_and_the_issue() {
        let s = Settings::from_lookup(|n| (n == "TABLE_NAME").then(|| "t".into())).unwrap();
        assert_eq!(s.queue_name, "SAMPLE_QUEUE");
        assert_eq!(s.idle_timeout, Duration::from_millis(1000));
        assert_eq!((s.max_messages, s.ttl_days), (None, None));
        assert!(s.broker_urls.is_empty());
        assert_eq!((s.prefetch_window(), s.secret_ttl), (200, Duration::from_secs(300)));
        let capped = Settings::from_lookup(|n| match n {
            "TABLE_NAME" => Some("t".into()),
            "MAX_MESSAGES" => Some("5".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!((capped.prefetch_window(), capped.poll_batch()), (5, 2));
        assert_eq!(s.poll_batch(), 100, "half the default window");
    }

    #[test]
    fn the_byte_budget_is_a_quarter_of_the_memory_left_by_the_extension_unless_set() {
        let with = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
            Settings::from_lookup(move |name| {
                (name == "TABLE_NAME")
                    .then(|| "t".to_owned())
                    .or_else(|| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
            })
        };
        const MIB: usize = 1024 * 1024;
        assert_eq!(with(&[]).unwrap().byte_budget(), 32 * MIB, "128 MB when Lambda's variable is missing");
        let mut settings = with(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")]).unwrap();
        assert_eq!(settings.byte_budget(), 64 * MIB);
        settings.secrets_extension_attached = true;
        assert_eq!(settings.byte_budget(), 60 * MIB, "(256 - 16) / 4");
        let set = with(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"), ("MAX_BYTES_IN_FLIGHT", "1000")]).unwrap();
        assert_eq!(set.byte_budget(), 1000);
        assert!(with(&[("MAX_BYTES_IN_FLIGHT", "0")]).unwrap_err().contains("MAX_BYTES_IN_FLIGHT"));
        assert!(with(&[("MAX_BYTES_IN_FLIGHT", "lots")]).unwrap_err().contains("MAX_BYTES_IN_FLIGHT"));
    }

    #[test]
    fn endpoints_split_on_commas_and_bad_numbers_are_named() {
        let s = Settings::from_lookup(|n| match n {
            "TABLE_NAME" => Some("t".into()),
            "BROKER_URL" => Some("stomp+ssl://a:61614, stomp+ssl://b:61614".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(s.broker_urls, ["stomp+ssl://a:61614", "stomp+ssl://b:61614"]);
        let err = Settings::from_lookup(|n| match n {
            "TABLE_NAME" => Some("t".into()),
            "MAX_MESSAGES" => Some("lots".into()),
            _ => None,
        })
        .unwrap_err();
        assert!(err.contains("MAX_MESSAGES"));
        assert!(Settings::from_lookup(|_| None).unwrap_err().contains("TABLE_NAME"));
    }
}
