//! The AWS clients a drain calls, made once at init.

pub struct AwsClients {
    pub ec2: aws_sdk_ec2::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
}

impl AwsClients {
    pub fn new(config: &shared::aws::SdkConfig) -> AwsClients {
        AwsClients {
            ec2: aws_sdk_ec2::Client::new(config),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(config),
            autoscaling: aws_sdk_autoscaling::Client::new(config),
        }
    }
}
