//! Every file in `events/` replayed with `cargo lambda invoke --data-file` against
//! `cargo lambda watch` (the real function binaries), the emulator behind it, with the
//! documented outcome asserted. rds-promoter and env-rewriter run with DRY_RUN=true, so
//! the replay checks everything and changes nothing there.

use std::path::PathBuf;

use aws_sdk_dynamodb::types::{AttributeValue, StreamViewType};
use failover_testkit::fixtures::{dynamodb, ec2, rds, ssm};
use failover_testkit::lambda_watch::LambdaWatch;
use failover_testkit::{unique_name, Emulator, PRIMARY, SECONDARY};

fn event(name: &str) -> PathBuf {
    failover_testkit::venv::repo_root().join("events").join(name)
}

#[tokio::test]
async fn every_sample_event_has_its_documented_outcome_through_cargo_lambda() {
    let emu = Emulator::shared();
    let (a, b) = (emu.clients(PRIMARY).await, emu.clients(SECONDARY).await);
    // The stream batch names table shop-data in us-east-1; its copy is a fresh table in us-west-2.
    let target_table = unique_name("shop-data-copy");
    dynamodb::create_table(&b, &target_table, None).await;
    let _ = dynamodb::create_table(&a, "shop-data", Some(StreamViewType::NewAndOldImages)).await;
    let state_table = unique_name("replay-state");
    dynamodb::create_state_table(&b, &state_table).await;
    let heartbeats = unique_name("replay-heartbeats");
    dynamodb::create_state_table(&a, &heartbeats).await;
    dynamodb::create_state_table(&b, &heartbeats).await;
    let database = rds::create_mysql_with_cross_region_replica(&a, &b, &unique_name("replaydb")).await;
    let environment = unique_name("replay");
    ec2::launch_app_servers(&b, "Magento", &environment, 1).await;
    // The sample Parameter Store Change names /shop/failover/active-region.
    ssm::put_parameter(&b, "/shop/failover/active-region", SECONDARY).await;

    let env: Vec<(String, String)> = emu
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .chain(
            [
                ("DRY_RUN", "true"),
                ("PRIMARY_REGION", PRIMARY),
                ("SECONDARY_REGION", SECONDARY),
                ("REPLICA_IDENTIFIER", database.replica_id.as_str()),
                ("REPLICA_REGION", SECONDARY),
                ("ALLOWED_ALARM_PREFIXES", "shop-failover-"),
                ("FAILOVER_REGION", SECONDARY),
                ("PARAMETER_PREFIX", "/shop/failover"),
                ("STATE_TABLE", state_table.as_str()),
                ("HEARTBEAT_TABLE", heartbeats.as_str()),
                ("APP_REGION", SECONDARY),
                ("ENVIRONMENT", environment.as_str()),
                ("DOCUMENT_NAME", "shop-failover-repoint-app"),
                ("ENV_FILE", "/etc/shop/failover.env"),
                ("SOURCE_TABLE_NAME", "shop-data"),
                ("SOURCE_REGION", PRIMARY),
                ("TARGET_TABLE_NAME", target_table.as_str()),
                ("TARGET_REGION", SECONDARY),
                ("KEY_ATTRIBUTES", "pk,sk"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
        .collect();
    let log = std::env::temp_dir().join(format!("failover-replay-watch-{}.log", std::process::id()));
    let watch = LambdaWatch::start(&failover_testkit::venv::repo_root(), &env, &log)
        .unwrap_or_else(|e| panic!("cargo lambda watch (run scripts/venv.sh tools to install cargo-lambda): {e}"));
    let replayed = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let invoke = |function: &str, file: &str| {
        replayed.borrow_mut().insert(file.to_owned());
        watch
            .invoke_file(function, &event(file))
            .unwrap_or_else(|e| panic!("{function} {file}: {e}; see {}", log.display()))
            .unwrap_or_else(|e| panic!("{function} {file} failed: {e}; see {}", log.display()))
    };

    // While the primary still answers, the split-brain guard would refuse.
    let outcome = invoke("rds-promoter", "alarm-state-change-to-alarm.json");
    assert_eq!(outcome["action"], "dry-run", "{outcome}");
    assert_eq!(outcome["splitBrain"]["verdict"], "refuse", "{outcome}");
    // Once the primary database is down, the same kind of alarm would promote.
    a.rds
        .stop_db_instance()
        .db_instance_identifier(&database.primary_id)
        .send()
        .await
        .unwrap();
    let outcome = invoke("rds-promoter", "alarm-action-direct-to-alarm.json");
    assert_eq!(outcome["action"], "dry-run", "{outcome}");
    assert!(
        outcome["plan"].to_string().contains("would call PromoteReadReplica"),
        "{outcome}"
    );
    let replica = b
        .rds
        .describe_db_instances()
        .db_instance_identifier(&database.replica_id)
        .send()
        .await
        .unwrap();
    assert!(
        replica.db_instances()[0]
            .read_replica_source_db_instance_identifier()
            .is_some(),
        "dry run changed nothing"
    );
    for file in [
        "alarm-state-change-to-ok.json",
        "alarm-state-change-to-insufficient-data.json",
    ] {
        let outcome = invoke("rds-promoter", file);
        assert_eq!(outcome["action"], "ignored", "{file}: {outcome}");
        assert_eq!(outcome["ignoredBecause"]["kind"], "not-alarm");
    }

    let replicated = invoke("stream-replicator", "dynamodb-stream-batch.json");
    assert_eq!(replicated["batchItemFailures"], serde_json::json!([]), "{replicated}");
    let copy = b
        .dynamodb
        .scan()
        .table_name(&target_table)
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let keys: Vec<String> = copy
        .items()
        .iter()
        .filter_map(|i| i.get("pk").and_then(|v| v.as_s().ok()).cloned())
        .collect();
    assert_eq!(
        keys,
        ["CART#7f3c2a"],
        "the order and the TTL-expired session were deleted"
    );
    assert_eq!(
        copy.items()[0].get("qty"),
        Some(&AttributeValue::N("2".into())),
        "the last change of the cart won"
    );

    let rewrite = invoke("env-rewriter", "parameter-store-change.json");
    assert_eq!(rewrite["status"], "dry-run", "{rewrite}");
    assert_eq!(rewrite["target"]["region"], SECONDARY);
    assert_eq!(rewrite["instances"].as_array().map(Vec::len), Some(1));

    let run = invoke("health-monitor", "scheduled-event.json");
    assert_eq!(run["decision"]["decision"], "stay", "{run}");
    assert!(
        run["checks"].as_array().unwrap().iter().all(|c| c["healthy"] == true),
        "{run}"
    );

    let samples: std::collections::BTreeSet<String> =
        std::fs::read_dir(failover_testkit::venv::repo_root().join("events"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".json"))
            .collect();
    assert_eq!(
        *replayed.borrow(),
        samples,
        "every sample in events/ is replayed with its documented outcome"
    );
}
