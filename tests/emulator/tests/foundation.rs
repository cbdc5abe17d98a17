//! Foundation: the Rust SDK against the local emulator, in two regions: DynamoDB + Streams, RDS
//! cross-region replicas, EC2 tag/state filters with pagination, SSM parameters, region
//! isolation, and the emulator's own lifecycle.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, StreamViewType};
use aws_sdk_ec2::types::Filter;
use failover_testkit::fixtures::{dynamodb, ec2, rds, ssm, stream_event};
use failover_testkit::kept_child::process_alive;
use failover_testkit::{unique_name, Emulator, PRIMARY, SECONDARY};

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.into())
}

#[tokio::test]
async fn dynamodb_stream_records_become_a_lambda_event_and_regions_stay_isolated() {
    let emu = Emulator::shared();
    let (a, b) = (emu.clients(PRIMARY).await, emu.clients(SECONDARY).await);
    let name = unique_name("orders");
    let pair = dynamodb::create_table_pair(&a, &b, &name, StreamViewType::NewAndOldImages).await;

    let key = [("pk".to_string(), s("ORDER#1")), ("sk".to_string(), s("META"))];
    a.dynamodb
        .put_item()
        .table_name(&name)
        .set_item(Some(
            key.clone()
                .into_iter()
                .chain([("status".to_string(), s("pending"))])
                .collect(),
        ))
        .send()
        .await
        .unwrap();
    a.dynamodb
        .put_item()
        .table_name(&name)
        .set_item(Some(
            key.clone()
                .into_iter()
                .chain([("status".to_string(), s("paid"))])
                .collect(),
        ))
        .send()
        .await
        .unwrap();
    a.dynamodb
        .delete_item()
        .table_name(&name)
        .set_key(Some(key.clone().into_iter().collect()))
        .send()
        .await
        .unwrap();

    let batch = stream_event::read_stream_as_lambda_event(&emu.streams(PRIMARY).await, &pair.stream_arn).await;
    let records = &batch.event.records;
    let names: Vec<&str> = records.iter().map(|r| r.event_name.as_str()).collect();
    assert_eq!(names, ["INSERT", "MODIFY", "REMOVE"]);
    for record in records {
        assert_eq!(record.aws_region, PRIMARY);
        assert_eq!(record.event_source.as_deref(), Some("aws:dynamodb"));
        assert_eq!(record.event_source_arn.as_deref(), Some(pair.stream_arn.as_str()));
        assert!(!record.event_id.is_empty());
    }
    let raw = &batch.payload["Records"];
    assert_eq!(
        raw[0]["dynamodb"]["NewImage"]["status"],
        serde_json::json!({"S": "pending"})
    );
    assert_eq!(
        raw[1]["dynamodb"]["OldImage"]["status"],
        serde_json::json!({"S": "pending"})
    );
    assert_eq!(
        raw[1]["dynamodb"]["NewImage"]["status"],
        serde_json::json!({"S": "paid"})
    );
    assert_eq!(raw[2]["dynamodb"]["Keys"]["pk"], serde_json::json!({"S": "ORDER#1"}));
    assert!(raw[2]["dynamodb"].get("NewImage").is_none());
    assert!(raw[0]["dynamodb"]["ApproximateCreationDateTime"].as_i64().unwrap() > 1_600_000_000);
    let sequence: Vec<u128> = records
        .iter()
        .map(|r| r.change.sequence_number.as_deref().unwrap().parse().unwrap())
        .collect();
    assert!(
        sequence.windows(2).all(|w| w[0] < w[1]),
        "sequence numbers increase: {sequence:?}"
    );

    // The twin in the secondary region saw none of it, and a primary-only table is unknown there.
    let twin = b.dynamodb.scan().table_name(&name).send().await.unwrap();
    assert_eq!(twin.count(), 0);
    a.dynamodb
        .put_item()
        .table_name(&name)
        .set_item(Some(key.clone().into_iter().collect()))
        .send()
        .await
        .unwrap();
    let in_b = b
        .dynamodb
        .get_item()
        .table_name(&name)
        .set_key(Some(key.into_iter().collect()))
        .send()
        .await
        .unwrap();
    assert!(in_b.item().is_none());
    let only_a = unique_name("only-primary");
    dynamodb::create_table(&a, &only_a, None).await;
    let err = b
        .dynamodb
        .describe_table()
        .table_name(&only_a)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "{err:?}"
    );
}

#[tokio::test]
async fn rds_mysql_primary_gets_a_cross_region_read_replica() {
    let emu = Emulator::shared();
    let (a, b) = (emu.clients(PRIMARY).await, emu.clients(SECONDARY).await);
    let pair = rds::create_mysql_with_cross_region_replica(&a, &b, &unique_name("shopdb")).await;

    let replica = b
        .rds
        .describe_db_instances()
        .db_instance_identifier(&pair.replica_id)
        .send()
        .await
        .unwrap();
    let replica = &replica.db_instances()[0];
    assert_eq!(
        replica.read_replica_source_db_instance_identifier(),
        Some(pair.primary_arn.as_str())
    );
    assert_eq!(replica.engine(), Some("mysql"));
    assert_eq!(replica.db_instance_status(), Some("available"));
    assert!(pair.replica_arn.starts_with(&format!("arn:aws:rds:{SECONDARY}:")));
    assert!(replica.endpoint().and_then(|e| e.address()).is_some());

    let primary = a
        .rds
        .describe_db_instances()
        .db_instance_identifier(&pair.primary_id)
        .send()
        .await
        .unwrap();
    let primary = &primary.db_instances()[0];
    assert!(primary.read_replica_source_db_instance_identifier().is_none());
    assert!(
        primary
            .read_replica_db_instance_identifiers()
            .contains(&pair.replica_arn),
        "{primary:?}"
    );

    // Each instance exists only in its own region.
    assert!(a
        .rds
        .describe_db_instances()
        .db_instance_identifier(&pair.replica_id)
        .send()
        .await
        .is_err());
    assert!(b
        .rds
        .describe_db_instances()
        .db_instance_identifier(&pair.primary_id)
        .send()
        .await
        .is_err());
}

#[tokio::test]
async fn ec2_tag_and_state_filters_work_across_pages() {
    let emu = Emulator::shared();
    let (a, b) = (emu.clients(PRIMARY).await, emu.clients(SECONDARY).await);
    let environment = unique_name("prod");
    let magento = ec2::launch_app_servers(&a, "Magento", &environment, 7).await;
    let woo = ec2::launch_reservation(&a, "WooCommerce", &environment, 3).await;
    ec2::launch_app_servers(&a, "Magento", &unique_name("staging"), 2).await;
    ec2::launch_app_servers(&a, "Jenkins", &environment, 1).await;
    ec2::stop_instances(&a, &magento[..2]).await;

    let running_app_servers = |clients: failover_testkit::clients::RegionClients| {
        let environment = environment.clone();
        async move {
            let mut pages = clients
                .ec2
                .describe_instances()
                .filters(
                    Filter::builder()
                        .name("tag:App")
                        .values("Magento")
                        .values("WooCommerce")
                        .build(),
                )
                .filters(Filter::builder().name("tag:Environment").values(environment).build())
                .filters(Filter::builder().name("instance-state-name").values("running").build())
                .max_results(5)
                .into_paginator()
                .send();
            let (mut ids, mut page_count) = (BTreeSet::new(), 0);
            while let Some(page) = pages.next().await {
                page_count += 1;
                for reservation in page.unwrap().reservations() {
                    ids.extend(
                        reservation
                            .instances()
                            .iter()
                            .filter_map(|i| i.instance_id().map(str::to_owned)),
                    );
                }
            }
            (ids, page_count)
        }
    };

    let (ids, pages) = running_app_servers(a.clone()).await;
    let expected: BTreeSet<String> = magento[2..].iter().chain(&woo).cloned().collect();
    assert_eq!(ids, expected);
    assert!(pages >= 2, "8 instances at 5 per page need several pages, got {pages}");
    let (in_b, _) = running_app_servers(b).await;
    assert!(in_b.is_empty(), "instances leaked into {SECONDARY}: {in_b:?}");
}

#[tokio::test]
async fn ssm_parameters_version_refuse_silent_overwrite_and_stay_in_their_region() {
    let emu = Emulator::shared();
    let (a, b) = (emu.clients(PRIMARY).await, emu.clients(SECONDARY).await);
    let name = format!("/{}/failover/active-region", unique_name("shop"));
    assert_eq!(ssm::put_parameter(&a, &name, PRIMARY).await, 1);

    let err = a
        .ssm
        .put_parameter()
        .name(&name)
        .value(SECONDARY)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().is_some_and(|e| e.is_parameter_already_exists()),
        "{err:?}"
    );
    assert_eq!(ssm::get_parameter(&a, &name).await.as_deref(), Some(PRIMARY));

    assert_eq!(ssm::put_parameter(&a, &name, SECONDARY).await, 2);
    assert_eq!(ssm::get_parameter(&a, &name).await.as_deref(), Some(SECONDARY));
    assert_eq!(ssm::get_parameter(&b, &name).await, None);
}

/// Runs in a child process (see below): starts a private emulator, reports its pid,
/// then dies without any cleanup.
#[test]
#[ignore = "child half of emulator_never_outlives_a_crashed_test_process"]
fn orphan_probe_child() {
    if std::env::var_os("FAILOVER_ORPHAN_PROBE").is_none() {
        return;
    }
    let emulator = Emulator::start().expect("start emulator");
    println!("MOTO_PID={}", emulator.pid());
    std::process::abort();
}

#[test]
fn emulator_never_outlives_a_crashed_test_process() {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "foundation::orphan_probe_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("FAILOVER_ORPHAN_PROBE", "1")
        .output()
        .expect("run child test process");
    assert!(!output.status.success(), "the child must die by abort");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // libtest prints "test orphan_probe_child ... " on the same line before the pid.
    let pid: u32 = stdout
        .split("MOTO_PID=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "child printed no pid: {stdout} {}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    let started = Instant::now();
    while process_alive(pid) && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!process_alive(pid), "moto {pid} outlived its aborted parent");
}

#[tokio::test]
async fn a_private_emulator_resets_and_stops_with_its_owner() {
    Emulator::shared(); // dummy credentials and endpoint variables are set here
    let emulator = Emulator::start().expect("start emulator");
    let pid = emulator.pid();
    let endpoint = emulator.endpoint();
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new(PRIMARY))
        .endpoint_url(&endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::for_tests())
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    let clients = failover_testkit::clients::RegionClients {
        dynamodb: client.clone(),
        ..Emulator::shared().clients(PRIMARY).await
    };
    dynamodb::create_table(&clients, "reset-me", None).await;
    assert_eq!(client.list_tables().send().await.unwrap().table_names(), ["reset-me"]);
    emulator.reset().unwrap();
    assert!(client.list_tables().send().await.unwrap().table_names().is_empty());

    drop(emulator);
    let started = Instant::now();
    while process_alive(pid) && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !process_alive(pid),
        "moto {pid} still running after its owner dropped it"
    );
}
