//! Staging EC2, ELBv2 and Auto Scaling in moto: a VPC with a subnet, instances, target groups,
//! registrations, an Auto Scaling group; and reads of what target groups hold.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, TargetDescription, TargetTypeEnum};

/// An AMI id moto accepts.
const IMAGE_ID: &str = "ami-12c6146b";

pub struct Instance {
    pub id: String,
    pub ip: String,
}

/// A VPC `<prefix>.0.0/16` with one subnet `<prefix>.1.0/24`; returns their ids.
pub async fn vpc_with_subnet(ec2: &aws_sdk_ec2::Client, prefix: &str) -> (String, String) {
    let vpc = ec2.create_vpc().cidr_block(format!("{prefix}.0.0/16")).send().await.expect("create_vpc");
    let vpc_id = vpc.vpc().and_then(|v| v.vpc_id()).expect("vpc id").to_owned();
    let subnet =
        ec2.create_subnet().vpc_id(&vpc_id).cidr_block(format!("{prefix}.1.0/24")).send().await.expect("create_subnet");
    let subnet_id = subnet.subnet().and_then(|s| s.subnet_id()).expect("subnet id").to_owned();
    (vpc_id, subnet_id)
}

/// One running instance in the subnet, with `tags`.
pub async fn launch(ec2: &aws_sdk_ec2::Client, subnet_id: &str, tags: &[(&str, &str)]) -> Instance {
    let mut request = ec2.run_instances().image_id(IMAGE_ID).min_count(1).max_count(1).subnet_id(subnet_id);
    if !tags.is_empty() {
        let mut spec = TagSpecification::builder().resource_type(ResourceType::Instance);
        for (k, v) in tags {
            spec = spec.tags(Tag::builder().key(*k).value(*v).build());
        }
        request = request.tag_specifications(spec.build());
    }
    let output = request.send().await.expect("run_instances");
    let instance = &output.instances()[0];
    Instance {
        id: instance.instance_id().expect("instance id").to_owned(),
        ip: instance.private_ip_address().expect("private ip").to_owned(),
    }
}

/// An HTTP:80 target group of `kind` in the VPC; returns its ARN.
pub async fn create_group(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    vpc_id: &str,
    name: &str,
    kind: TargetTypeEnum,
) -> String {
    let output = elb
        .create_target_group()
        .name(name)
        .protocol(ProtocolEnum::Http)
        .port(80)
        .vpc_id(vpc_id)
        .target_type(kind)
        .send()
        .await
        .expect("create_target_group");
    output.target_groups()[0].target_group_arn().expect("arn").to_owned()
}

/// `count` instance-type groups in the VPC, named `<prefix>-<i>`; returns their ARNs.
pub async fn many_groups(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    vpc_id: &str,
    prefix: &str,
    count: usize,
) -> Vec<String> {
    let mut groups = Vec::with_capacity(count);
    for i in 0..count {
        groups.push(create_group(elb, vpc_id, &format!("{prefix}-{i}"), TargetTypeEnum::Instance).await);
    }
    groups
}

/// Registers every one of `instances` in each of `groups` on port 8080, one call per group.
pub async fn register_all(elb: &aws_sdk_elasticloadbalancingv2::Client, groups: &[String], instances: &[String]) {
    for group in groups {
        let targets = instances.iter().map(|id| TargetDescription::builder().id(id).port(8080).build());
        elb.register_targets()
            .target_group_arn(group)
            .set_targets(Some(targets.collect()))
            .send()
            .await
            .expect("register_targets");
    }
}

/// Registers `id` (instance id or IP) in the group on `port`.
pub async fn register(elb: &aws_sdk_elasticloadbalancingv2::Client, group: &str, id: &str, port: i32) {
    elb.register_targets()
        .target_group_arn(group)
        .targets(TargetDescription::builder().id(id).port(port).build())
        .send()
        .await
        .expect("register_targets");
}

/// An instance in a VPC of its own (`<prefix>.0.0/16`), registered on `port` in a new
/// instance-type group of each name; returns the instance id and the groups' ARNs.
pub async fn instance_in_groups(
    ec2: &aws_sdk_ec2::Client,
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    prefix: &str,
    groups: &[&str],
    port: i32,
) -> (String, Vec<String>) {
    let (vpc_id, subnet_id) = vpc_with_subnet(ec2, prefix).await;
    let instance_id = launch(ec2, &subnet_id, &[]).await.id;
    let mut arns = Vec::new();
    for name in groups {
        let arn = create_group(elb, &vpc_id, name, TargetTypeEnum::Instance).await;
        register(elb, &arn, &instance_id, port).await;
        arns.push(arn);
    }
    (instance_id, arns)
}

/// An Auto Scaling group `name` of `size` instances in the subnet, with `target_groups`
/// attached; returns its instances' ids (moto tags each with `aws:autoscaling:groupName`).
pub async fn auto_scaling_group(
    autoscaling: &aws_sdk_autoscaling::Client,
    name: &str,
    subnet_id: &str,
    size: i32,
    target_groups: &[String],
) -> Vec<String> {
    let config = format!("{name}-config");
    autoscaling
        .create_launch_configuration()
        .launch_configuration_name(&config)
        .image_id(IMAGE_ID)
        .instance_type("t3.micro")
        .send()
        .await
        .expect("create_launch_configuration");
    autoscaling
        .create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .launch_configuration_name(&config)
        .min_size(size)
        .max_size(size + 2)
        .desired_capacity(size)
        .vpc_zone_identifier(subnet_id)
        .set_target_group_arns(Some(target_groups.to_vec()))
        .send()
        .await
        .expect("create_auto_scaling_group");
    let group = describe_group(autoscaling, name).await;
    group.instances().iter().filter_map(|i| i.instance_id().map(str::to_owned)).collect()
}

/// The Auto Scaling group `name` as Auto Scaling describes it now.
pub async fn describe_group(
    autoscaling: &aws_sdk_autoscaling::Client,
    name: &str,
) -> aws_sdk_autoscaling::types::AutoScalingGroup {
    let groups = autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .expect("describe_auto_scaling_groups");
    groups.auto_scaling_groups().first().cloned().unwrap_or_else(|| panic!("no Auto Scaling group {name}"))
}

/// The target ids registered in the group now.
pub async fn targets_in(elb: &aws_sdk_elasticloadbalancingv2::Client, group: &str) -> BTreeSet<String> {
    let health = elb.describe_target_health().target_group_arn(group).send().await.expect("describe_target_health");
    health
        .target_health_descriptions()
        .iter()
        .filter_map(|d| d.target().and_then(|t| t.id()).map(str::to_owned))
        .collect()
}

/// Every (group, target id, port) registered now in `groups`, sorted.
pub async fn registrations(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    groups: &[String],
) -> Vec<(String, String, Option<i32>)> {
    let mut all = Vec::new();
    for group in groups {
        let health = elb.describe_target_health().target_group_arn(group).send().await.expect("describe_target_health");
        for description in health.target_health_descriptions() {
            let target = description.target().expect("target");
            all.push((group.clone(), target.id().unwrap_or_default().to_owned(), target.port()));
        }
    }
    all.sort();
    all
}
