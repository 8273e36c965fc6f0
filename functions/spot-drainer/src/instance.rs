//! What the drain needs to know about the instance, from one `DescribeInstances` call.

use std::collections::HashMap;

use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata};

use crate::error::DrainError;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceFacts {
    pub instance_id: String,
    pub vpc_id: Option<String>,
    /// Every private IPv4 address on every network interface: ip-type target groups
    /// may have registered any of them.
    pub private_ips: Vec<String>,
    pub tags: HashMap<String, String>,
}

impl InstanceFacts {
    /// Whether a target group's target id names this instance.
    pub fn is_target(&self, target_id: &str) -> bool {
        target_id == self.instance_id || self.private_ips.iter().any(|ip| ip == target_id)
    }
}

/// Looks the instance up; `None` when EC2 no longer knows it (already terminated and gone).
pub async fn describe_instance(
    ec2: &aws_sdk_ec2::Client,
    instance_id: &str,
) -> Result<Option<InstanceFacts>, DrainError> {
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
    let Some(instance) = output
        .reservations()
        .iter()
        .flat_map(|reservation| reservation.instances())
        .find(|instance| instance.instance_id() == Some(instance_id))
    else {
        return Ok(None);
    };
    let mut private_ips: Vec<String> = instance
        .network_interfaces()
        .iter()
        .flat_map(|interface| interface.private_ip_addresses())
        .filter_map(|address| address.private_ip_address().map(str::to_owned))
        .collect();
    if let Some(primary) = instance.private_ip_address() {
        if !private_ips.iter().any(|ip| ip == primary) {
            private_ips.push(primary.to_owned());
        }
    }
    let tags = instance
        .tags()
        .iter()
        .filter_map(|tag| Some((tag.key()?.to_owned(), tag.value().unwrap_or_default().to_owned())))
        .collect();
    Ok(Some(InstanceFacts {
        instance_id: instance_id.to_owned(),
        vpc_id: instance.vpc_id().map(str::to_owned),
        private_ips,
        tags,
    }))
}
