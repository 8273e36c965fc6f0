//! S3 in moto: a client that reaches it (path-style, as moto's single endpoint needs), and reads
//! of the objects a bucket holds.

/// An S3 client for `config`, with path-style addressing (`<endpoint>/<bucket>/<key>`).
pub fn path_style_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(config).force_path_style(true).build())
}

/// The object's bytes.
pub async fn object(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    let object = s3.get_object().bucket(bucket).key(key).send().await.expect("get_object");
    object.body.collect().await.expect("object body").into_bytes().to_vec()
}

/// The keys of the bucket's objects (the first page of a listing: up to 1,000).
pub async fn object_keys(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let listed = s3.list_objects_v2().bucket(bucket).send().await.expect("list_objects_v2");
    listed.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect()
}
