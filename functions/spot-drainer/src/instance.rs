//! What the drain needs to know about each instance, from `DescribeInstances` (one call for
//! up to 200 instances).

use std::collections::HashMap;
use std::net::IpAddr;

use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata};
use futures::{stream, StreamExt};

use crate::error::DrainError;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceFacts {
    pub instance_id: String,
    pub vpc_id: Option<String>,
    /// Every private address on every network interface (IPv4, secondary ones included, and
    /// IPv6): ip-type target groups may have registered any of them.
    pub addresses: Vec<IpAddr>,
    /// The prefixes delegated to its interfaces (IPv4 /28, IPv6 /80): an ip target inside one
    /// is an address of this instance too.
    pub prefixes: Vec<IpPrefix>,
    pub tags: HashMap<String, String>,
    /// Terminated: its interfaces, and so its addresses, are released (and may already be
    /// another instance's), so only targets naming its id are its own.
    pub addresses_released: bool,
}

impl InstanceFacts {
    /// Whether a target group's target id names this instance: its id, or one of its addresses
    /// compared as an address (so `2001:db8::1` and `2001:db8:0:0::1` are one).
    pub fn is_target(&self, target_id: &str) -> bool {
        if target_id == self.instance_id {
            return true;
        }
        match target_id.parse::<IpAddr>() {
            Ok(ip) => self.addresses.contains(&ip) || self.prefixes.iter().any(|prefix| prefix.contains(ip)),
            Err(_) => false,
        }
    }
}

/// An address prefix, `10.0.0.16/28` or `2001:db8:1::/80`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPrefix {
    network: IpAddr,
    length: u8,
}

impl IpPrefix {
    pub fn parse(text: &str) -> Option<IpPrefix> {
        let (address, length) = text.trim().split_once('/')?;
        let network: IpAddr = address.parse().ok()?;
        let length: u8 = length.parse().ok()?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        (length <= bits).then_some(IpPrefix { network, length })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // Compared as the leading `length` bits; an IPv4 address is never inside an IPv6 prefix.
        let (network, ip, bits) = match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => (u128::from(u32::from(n)), u128::from(u32::from(a)), 32u32),
            (IpAddr::V6(n), IpAddr::V6(a)) => (u128::from(n), u128::from(a), 128u32),
            _ => return false,
        };
        let host_bits = bits - u32::from(self.length);
        host_bits >= 128 || (network >> host_bits) == (ip >> host_bits)
    }
}

/// Instance ids per `DescribeInstances` call (a pool reclaim's hundred warnings are one call,
/// not a hundred against EC2's shared describe bucket).
const IDS_PER_CALL: usize = 200;
/// Calls in flight when a call's ids are looked up one by one.
const ONE_BY_ONE_AT_ONCE: usize = 8;

/// Looks every instance up, `IDS_PER_CALL` ids a call; one answer per id, in order. The ids go
/// as `InstanceIds`, not as a filter: EC2 answers for the ids of healthy Availability Zones even
/// when another zone is disrupted, and fails a call without ids then. One id EC2 no longer
/// knows (or finds malformed) fails its whole call, so that call's ids are then looked up one by
/// one (the event parser refuses most ids EC2 could not have made).
pub async fn describe_instances(
    ec2: &aws_sdk_ec2::Client,
    instance_ids: &[&str],
) -> Vec<Result<Option<InstanceFacts>, DrainError>> {
    // One call after another: a chunk looked up one by one keeps its calls in flight few.
    let mut answers = Vec::with_capacity(instance_ids.len());
    for ids in instance_ids.chunks(IDS_PER_CALL) {
        answers.extend(describe_chunk(ec2, ids).await);
    }
    answers
}

async fn describe_chunk(ec2: &aws_sdk_ec2::Client, ids: &[&str]) -> Vec<Result<Option<InstanceFacts>, DrainError>> {
    if ids.len() == 1 {
        return vec![describe_instance(ec2, ids[0]).await];
    }
    let mut found: HashMap<String, InstanceFacts> = HashMap::new();
    let mut next_token = None;
    loop {
        let call = ec2
            .describe_instances()
            .set_instance_ids(Some(ids.iter().map(|id| (*id).to_owned()).collect()))
            .set_next_token(next_token.take());
        let page = match call.send().await {
            Ok(page) => page,
            Err(err) if matches!(err.code(), Some("InvalidInstanceID.NotFound" | "InvalidInstanceID.Malformed")) => {
                // A few at a time: EC2's describe bucket is the account's too.
                let one_by_one = stream::iter(ids).map(|id| describe_instance(ec2, id));
                return one_by_one.buffered(ONE_BY_ONE_AT_ONCE).collect().await;
            }
            Err(err) => {
                let message = DisplayErrorContext(&err).to_string();
                let failed = |id: &&str| DrainError::DescribeInstance {
                    instance_id: (*id).to_owned(),
                    message: message.clone(),
                };
                return ids.iter().map(|id| Err(failed(id))).collect();
            }
        };
        for instance in page.reservations().iter().flat_map(|reservation| reservation.instances()) {
            if let Some(id) = instance.instance_id().filter(|id| ids.contains(id)) {
                found.insert(id.to_owned(), facts_of(id, instance));
            }
        }
        match page.next_token() {
            Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
            _ => break,
        }
    }
    ids.iter().map(|id| Ok(found.get(*id).cloned())).collect()
}

/// Looks one instance up; `None` when EC2 no longer knows it (already terminated and gone).
async fn describe_instance(ec2: &aws_sdk_ec2::Client, instance_id: &str) -> Result<Option<InstanceFacts>, DrainError> {
    let output = match ec2.describe_instances().instance_ids(instance_id).send().await {
        Ok(output) => output,
        Err(err) if err.code() == Some("InvalidInstanceID.NotFound") => return Ok(None),
        Err(err) => {
            return Err(DrainError::DescribeInstance {
                instance_id: instance_id.to_owned(),
                message: DisplayErrorContext(&err).to_string(),
            })
        }
    };
    let instance = output
        .reservations()
        .iter()
        .flat_map(|reservation| reservation.instances())
        .find(|instance| instance.instance_id() == Some(instance_id));
    Ok(instance.map(|instance| facts_of(instance_id, instance)))
}

/// What the drain needs of one described instance.
fn facts_of(instance_id: &str, instance: &aws_sdk_ec2::types::Instance) -> InstanceFacts {
    let interfaces = instance.network_interfaces();
    let ipv4 = interfaces.iter().flat_map(|i| i.private_ip_addresses()).filter_map(|a| a.private_ip_address());
    let ipv6 = interfaces.iter().flat_map(|i| i.ipv6_addresses()).filter_map(|a| a.ipv6_address());
    let mut addresses: Vec<IpAddr> = Vec::new();
    for text in ipv4.chain(ipv6).chain(instance.private_ip_address()).chain(instance.ipv6_address()) {
        if let Ok(ip) = text.parse::<IpAddr>() {
            if !addresses.contains(&ip) {
                addresses.push(ip);
            }
        }
    }
    let v4_prefixes = interfaces.iter().flat_map(|i| i.ipv4_prefixes()).filter_map(|p| p.ipv4_prefix());
    let v6_prefixes = interfaces.iter().flat_map(|i| i.ipv6_prefixes()).filter_map(|p| p.ipv6_prefix());
    let prefixes = v4_prefixes.chain(v6_prefixes).filter_map(IpPrefix::parse).collect();
    let tags = instance
        .tags()
        .iter()
        .filter_map(|tag| Some((tag.key()?.to_owned(), tag.value().unwrap_or_default().to_owned())))
        .collect();
    let addresses_released =
        instance.state().and_then(|s| s.name()) == Some(&aws_sdk_ec2::types::InstanceStateName::Terminated);
    if addresses_released {
        tracing::warn!(%instance_id, "instance already terminated: its addresses may be another's now, so ip targets are left to the health checks");
    }
    InstanceFacts {
        instance_id: instance_id.to_owned(),
        vpc_id: instance.vpc_id().map(str::to_owned),
        addresses: if addresses_released { Vec::new() } else { addresses },
        prefixes: if addresses_released { Vec::new() } else { prefixes },
        tags,
        addresses_released,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(addresses: &[&str], prefixes: &[&str]) -> InstanceFacts {
        InstanceFacts {
            instance_id: "i-0abc".into(),
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            prefixes: prefixes.iter().map(|p| IpPrefix::parse(p).unwrap()).collect(),
            ..InstanceFacts::default()
        }
    }

    #[test]
    fn targets_match_by_id_address_or_delegated_prefix() {
        let facts = instance(&["10.0.0.5", "10.0.0.6", "2001:db8::1"], &["10.0.1.16/28", "2001:db8:1:2:3::/80"]);
        assert!(facts.is_target("i-0abc"));
        assert!(facts.is_target("10.0.0.6"), "a secondary address");
        assert!(facts.is_target("2001:0db8:0:0:0:0:0:1"), "IPv6 compared as an address, not as text");
        assert!(facts.is_target("10.0.1.31") && !facts.is_target("10.0.1.32"), "inside the /28, and just past it");
        assert!(facts.is_target("2001:db8:1:2:3:0:ffff:1"), "inside the delegated /80");
        assert!(!facts.is_target("2001:db8:1:2:4::1"));
        assert!(!facts.is_target("10.0.0.7") && !facts.is_target("i-0abd") && !facts.is_target("not an address"));
    }

    #[test]
    fn prefixes_parse_strictly() {
        assert!(IpPrefix::parse("10.0.0.0/33").is_none());
        assert!(IpPrefix::parse("10.0.0.0").is_none());
        assert!(IpPrefix::parse("::/0").is_some_and(|p| p.contains("2001:db8::9".parse().unwrap())));
        assert!(!IpPrefix::parse("0.0.0.0/0").unwrap().contains("::1".parse().unwrap()));
    }
}
