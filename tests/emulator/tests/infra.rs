//! The deployment templates against the emulator's CloudFormation.
//!
//! moto's CloudFormation does not run the SAM transform (a `Transform` template reports
//! CREATE_COMPLETE and creates nothing), so the test deploys `infra/core.yaml`, the plain
//! CloudFormation template that `infra/template.yaml` nests: tables, Parameter Store values,
//! the SSM document, failure queues, log groups and IAM roles. It is deployed as it is, once
//! per stack role, and the resources the functions rely on are checked through their own APIs.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_sdk_cloudformation::types::{Capability, Output, Parameter, StackStatus};
use aws_sdk_dynamodb::types::{KeyType, ScalarAttributeType, StreamViewType};
use failover_core::clients::{sdk_config, ClientTimeouts};
use failover_core::Region;
use failover_testkit::venv::repo_root;
use failover_testkit::{unique_name, Emulator, PRIMARY, SECONDARY};

async fn cloudformation(region: &str) -> aws_sdk_cloudformation::Client {
    let region = Region::new(region).unwrap();
    aws_sdk_cloudformation::Client::new(&sdk_config(&region, ClientTimeouts::default()).await)
}

fn core_template() -> String {
    std::fs::read_to_string(repo_root().join("infra/core.yaml")).unwrap()
}

fn document_file() -> serde_json::Value {
    let raw = std::fs::read_to_string(repo_root().join("infra/ssm/repoint-app-document.json")).unwrap();
    serde_json::from_str(&raw).unwrap()
}

/// Parameters of one deployment, named after `prefix` so parallel tests never collide.
fn parameters(prefix: &str, role: &str) -> Vec<(&'static str, String)> {
    let mut parameters = vec![
        ("NamePrefix", prefix.to_owned()),
        ("StackRole", role.to_owned()),
        ("PrimaryRegion", PRIMARY.to_owned()),
        ("SecondaryRegion", SECONDARY.to_owned()),
        ("ParameterPrefix", format!("/{prefix}/failover")),
        ("AppEnvironment", "production".to_owned()),
        ("PrimaryDbInstanceIdentifier", "shop-db".to_owned()),
        ("ReplicaDbInstanceIdentifier", "shop-db-replica".to_owned()),
        (
            "PrimaryDbHost",
            "shop-db.c9akciq32.us-east-1.rds.amazonaws.com".to_owned(),
        ),
        ("DataTableName", format!("{prefix}-data")),
    ];
    if role == "primary" {
        parameters.push((
            "DataTableStreamArn",
            format!("arn:aws:dynamodb:{PRIMARY}:123456789012:table/{prefix}-data/stream/2026-11-21T00:00:00.000"),
        ));
    }
    parameters
}

/// Creates the stack and waits for a final status; returns its outputs by key.
async fn deploy(region: &str, stack: &str, parameters: Vec<(&'static str, String)>) -> BTreeMap<String, String> {
    let cfn = cloudformation(region).await;
    cfn.create_stack()
        .stack_name(stack)
        .template_body(core_template())
        .set_parameters(Some(
            parameters
                .into_iter()
                .map(|(key, value)| Parameter::builder().parameter_key(key).parameter_value(value).build())
                .collect(),
        ))
        .capabilities(Capability::CapabilityIam)
        .send()
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let described = cfn.describe_stacks().stack_name(stack).send().await.unwrap();
        let found = &described.stacks()[0];
        match found.stack_status() {
            Some(StackStatus::CreateInProgress) if started.elapsed() < Duration::from_secs(60) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Some(StackStatus::CreateComplete) => {
                return found
                    .outputs()
                    .iter()
                    .filter_map(|o: &Output| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
                    .collect();
            }
            other => panic!("stack {stack} ended as {other:?}: {:?}", found.stack_status_reason()),
        }
    }
}

/// Logical ids of the resources the stack created (moto lists skipped conditional ones
/// with an empty id).
async fn created_resources(region: &str, stack: &str) -> BTreeSet<String> {
    let listed = cloudformation(region)
        .await
        .list_stack_resources()
        .stack_name(stack)
        .send()
        .await
        .unwrap();
    listed
        .stack_resource_summaries()
        .iter()
        .filter_map(|r| r.logical_resource_id())
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn key_schema(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> Vec<(String, KeyType, ScalarAttributeType)> {
    let described = dynamodb.describe_table().table_name(table).send().await.unwrap();
    let table = described.table().unwrap();
    table
        .key_schema()
        .iter()
        .map(|key| {
            let kind = table
                .attribute_definitions()
                .iter()
                .find(|a| a.attribute_name() == key.attribute_name())
                .map(|a| a.attribute_type().clone())
                .unwrap();
            (key.attribute_name().to_owned(), key.key_type().clone(), kind)
        })
        .collect()
}

#[tokio::test]
async fn secondary_core_creates_the_tables_parameters_document_and_roles_the_functions_use() {
    let emu = Emulator::shared();
    let b = emu.clients(SECONDARY).await;
    let prefix = unique_name("core");
    let outputs = deploy(SECONDARY, &prefix, parameters(&prefix, "secondary")).await;

    // Tables: the failover state/lock table and the heartbeat table (partition key `pk`,
    // string), and the secondary copy of the data table with the primary's key schema.
    let state = format!("{prefix}-state");
    let heartbeat = format!("{prefix}-heartbeat");
    let data = format!("{prefix}-data");
    assert_eq!(outputs["StateTableName"], state);
    assert_eq!(outputs["HeartbeatTableName"], heartbeat);
    assert_eq!(outputs["DataTableCopyName"], data);
    for table in [&state, &heartbeat] {
        assert_eq!(
            key_schema(&b.dynamodb, table).await,
            [("pk".to_owned(), KeyType::Hash, ScalarAttributeType::S)],
            "{table}"
        );
    }
    assert_eq!(
        key_schema(&b.dynamodb, &data).await,
        [
            ("pk".to_owned(), KeyType::Hash, ScalarAttributeType::S),
            ("sk".to_owned(), KeyType::Range, ScalarAttributeType::S)
        ]
    );
    let copy = b.dynamodb.describe_table().table_name(&data).send().await.unwrap();
    assert_eq!(
        copy.table()
            .unwrap()
            .stream_specification()
            .and_then(|s| s.stream_view_type()),
        Some(&StreamViewType::NewAndOldImages),
        "the copy streams, for a reverse replicator after failover"
    );
    // The state table works the way rds-promoter uses it: a conditional create of the lock.
    let lock = |attempt: &'static str| {
        b.dynamodb
            .put_item()
            .table_name(&state)
            .item("pk", aws_sdk_dynamodb::types::AttributeValue::S("promotion#x@1".into()))
            .item("owner", aws_sdk_dynamodb::types::AttributeValue::S(attempt.into()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
    };
    lock("first").await.unwrap();
    assert!(lock("second").await.is_err(), "the lock is taken once");

    // Parameter Store: seeded with where the shop runs before any failover.
    let parameter_prefix = format!("/{prefix}/failover");
    let names = ["db-host", "db-port", "active-region"].map(|n| format!("{parameter_prefix}/{n}"));
    assert_eq!(outputs["DbHostParameterName"], names[0]);
    assert_eq!(outputs["ActiveRegionParameterName"], names[2]);
    let got = b
        .ssm
        .get_parameters()
        .set_names(Some(names.to_vec()))
        .send()
        .await
        .unwrap();
    let values: BTreeMap<&str, &str> = got
        .parameters()
        .iter()
        .map(|p| (p.name().unwrap(), p.value().unwrap()))
        .collect();
    assert_eq!(
        values,
        BTreeMap::from([
            (names[0].as_str(), "shop-db.c9akciq32.us-east-1.rds.amazonaws.com"),
            (names[1].as_str(), "3306"),
            (names[2].as_str(), PRIMARY),
        ])
    );

    // The SSM Command document: exactly the committed document rendered from the repoint
    // script, with its typed, pattern-checked parameters.
    let document = format!("{prefix}-repoint-app");
    assert_eq!(outputs["DocumentName"], document);
    let fetched = b.ssm.get_document().name(&document).send().await.unwrap();
    assert_eq!(
        fetched.document_type(),
        Some(&aws_sdk_ssm::types::DocumentType::Command)
    );
    let content: serde_json::Value = serde_json::from_str(fetched.content().unwrap()).unwrap();
    assert_eq!(content, document_file());
    let described = b.ssm.describe_document().name(&document).send().await.unwrap();
    let declared: BTreeSet<&str> = described
        .document()
        .unwrap()
        .parameters()
        .iter()
        .filter_map(|p| p.name())
        .collect();
    let expected = document_file();
    let in_file: BTreeSet<&str> = expected["parameters"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(declared, in_file);
    for (name, spec) in expected["parameters"].as_object().unwrap() {
        assert_eq!(spec["type"], "String", "{name}");
        let pattern = spec["allowedPattern"].as_str().unwrap();
        assert!(pattern.starts_with('^') && pattern.ends_with('$'), "{name}: {pattern}");
    }

    // Roles, queues and log groups: one role per function of this region, the failure queues.
    // (moto has no AWS::SQS::QueuePolicy, so the queue policy is not listed.)
    let resources = created_resources(SECONDARY, &prefix).await;
    for id in [
        "RdsPromoterRole",
        "EnvRewriterRole",
        "HealthMonitorRole",
        "EventDeadLetterQueue",
        "InvocationFailureQueue",
        "RdsPromoterLogGroup",
        "EnvRewriterLogGroup",
        "HealthMonitorLogGroup",
        "RegionSwitchRole",
        "RegionSwitchLogGroup",
        "SwitchNotificationTopic",
        // The reverse replicator beside the copy (its mapping starts disabled), its bucket
        // and failure queue.
        "ReverseReplicatorRole",
        "ReverseReplicatorLogGroup",
        "ReplicationFailureQueue",
        "ReplicationDeadLetterBucket",
    ] {
        assert!(resources.contains(id), "{id} missing from {resources:?}");
    }
    assert_eq!(
        outputs["ReplicationDeadLetterBucketName"],
        format!("{prefix}-dlq-123456789012-{SECONDARY}")
    );
    assert!(outputs["DataTableCopyStreamArn"].contains("/stream/"), "{outputs:?}");
    for id in ["StreamReplicatorRole", "DataGlobalTable", "SwitchNotificationEmail"] {
        assert!(!resources.contains(id), "{id} belongs to another deployment");
    }
    assert!(outputs["RdsPromoterRoleArn"].starts_with("arn:aws:iam::"));
    assert_eq!(outputs["EventDeadLetterQueueName"], format!("{prefix}-event-dlq"));
    // The region-switch plan's topic (its notifications) and role.
    assert_eq!(
        outputs["SwitchNotificationTopicArn"],
        format!("arn:aws:sns:{SECONDARY}:123456789012:{prefix}-region-switch")
    );
    assert!(outputs["RegionSwitchRoleArn"].starts_with("arn:aws:iam::"));
}

#[tokio::test]
async fn primary_core_creates_the_heartbeat_table_and_the_replicators_role_only() {
    let emu = Emulator::shared();
    let a = emu.clients(PRIMARY).await;
    let prefix = unique_name("core");
    let outputs = deploy(PRIMARY, &prefix, parameters(&prefix, "primary")).await;

    // health-monitor writes a heartbeat in each region, to a table of the same name.
    let heartbeat = format!("{prefix}-heartbeat");
    assert_eq!(outputs["HeartbeatTableName"], heartbeat);
    assert_eq!(
        key_schema(&a.dynamodb, &heartbeat).await,
        [("pk".to_owned(), KeyType::Hash, ScalarAttributeType::S)]
    );
    assert_eq!(
        outputs["ReplicationFailureQueueName"],
        format!("{prefix}-replication-failures")
    );
    let resources = created_resources(PRIMARY, &prefix).await;
    for id in [
        "HeartbeatTable",
        "StreamReplicatorRole",
        "StreamReplicatorLogGroup",
        "ReplicationFailureQueue",
        "ReplicationDeadLetterBucket",
        // The plan's fence commands the primary region's app servers with it.
        "RepointDocument",
    ] {
        assert!(resources.contains(id), "{id} missing from {resources:?}");
    }
    // Nothing of the failover side is created in the primary region.
    for id in [
        "StateTable",
        "DataTableCopy",
        "ActiveRegionParameter",
        "RdsPromoterRole",
        "EnvRewriterRole",
        "HealthMonitorRole",
        "ReverseReplicatorRole",
    ] {
        assert!(!resources.contains(id), "{id} must not be in the primary stack");
    }
    let missing = a
        .ssm
        .get_parameter()
        .name(format!("/{prefix}/failover/active-region"))
        .send()
        .await;
    assert!(missing.is_err(), "no parameters in the primary region");
}

/// moto ignores `TimeToLiveSpecification`, so the attribute is compared as written: the
/// heartbeat table must expire items on the attribute health-monitor stamps on them.
#[test]
fn heartbeat_table_expires_the_attribute_health_monitor_writes() {
    let core = core_template();
    // The resource's lines (indented deeper than the resource names), then its TTL block.
    let table: Vec<&str> = core
        .lines()
        .skip_while(|line| *line != "  HeartbeatTable:")
        .skip(1)
        .take_while(|line| line.is_empty() || line.starts_with("   "))
        .collect();
    let ttl: Vec<&str> = table
        .iter()
        .skip_while(|line| line.trim() != "TimeToLiveSpecification:")
        .skip(1)
        .take_while(|line| line.starts_with("        "))
        .map(|line| line.trim())
        .collect();
    assert!(ttl.contains(&"Enabled: true"), "HeartbeatTable TTL: {ttl:?}");
    let attribute = ttl
        .iter()
        .find_map(|line| line.strip_prefix("AttributeName:"))
        .map(str::trim)
        .expect("HeartbeatTable has a TimeToLiveSpecification with an AttributeName");
    let adapter =
        std::fs::read_to_string(repo_root().join("functions/health-monitor/src/adapters/dynamodb_health.rs")).unwrap();
    let code: String = adapter.split_whitespace().collect();
    assert!(
        code.contains(&format!(".item(\"{attribute}\",")),
        "health-monitor's heartbeat write does not set the TTL attribute {attribute}"
    );
}
