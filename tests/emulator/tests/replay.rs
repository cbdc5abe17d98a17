//! Every file in `events/` replayed with `cargo lambda invoke --data-file` against
//! `cargo lambda watch` (the real function binaries), the emulator behind it, with the
//! documented outcome asserted. rds-promoter and env-rewriter run with DRY_RUN=true, so
//! the replay checks everything and changes nothing there. The functions reach the
//! emulator through a (fault-free) proxy that counts their requests: an alarm the
//! transition policy ignores must not send a single AWS request.

use std::path::PathBuf;

use aws_sdk_dynamodb::types::{AttributeValue, StreamViewType};
use failover_testkit::fault_proxy::{Fault, FaultPlan, FaultProxy};
use failover_testkit::fixtures::{dynamodb, ec2, rds, s3, ssm};
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
    let dead_letter = unique_name("replay-dead-letter");
    s3::create_bucket(&a, &dead_letter).await;
    let state_table = unique_name("replay-state");
    dynamodb::create_state_table(&b, &state_table).await;
    let heartbeats = unique_name("replay-heartbeats");
    dynamodb::create_state_table(&a, &heartbeats).await;
    dynamodb::create_state_table(&b, &heartbeats).await;
    let database = rds::create_mysql_with_cross_region_replica(&a, &b, &unique_name("replaydb")).await;
    let environment = unique_name("replay");
    let servers = ec2::launch_app_servers(&b, "Magento", &environment, 1).await;
    ec2::manage(emu, "Magento", &servers);
    // The sample Parameter Store Change names /shop/failover/active-region.
    ssm::put_parameter(&b, "/shop/failover/active-region", SECONDARY).await;

    let proxy = FaultProxy::start(&emu.endpoint(), FaultPlan::none(), 3).unwrap();
    let env: Vec<(String, String)> = emu
        .env()
        .into_iter()
        .map(|(k, v)| {
            let value = if k.starts_with("AWS_ENDPOINT_URL") {
                proxy.endpoint()
            } else {
                v
            };
            (k.to_owned(), value)
        })
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
                // One check round per invocation of the scheduled event.
                ("RUN_SECONDS", "0"),
                ("APP_REGION", SECONDARY),
                ("ENVIRONMENT", environment.as_str()),
                ("DOCUMENT_NAME", "shop-failover-repoint-app"),
                ("ENV_FILE", "/etc/shop/failover.env"),
                ("SOURCE_TABLE_NAME", "shop-data"),
                ("SOURCE_REGION", PRIMARY),
                ("TARGET_TABLE_NAME", target_table.as_str()),
                ("TARGET_REGION", SECONDARY),
                ("KEY_ATTRIBUTES", "pk,sk"),
                ("DEAD_LETTER_BUCKET", dead_letter.as_str()),
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
    // Once the primary region does not answer, the same kind of alarm would promote. (RDS
    // refuses to stop a source that has a read replica, so the outage is the region's.)
    proxy.fail_region(PRIMARY, Some(Fault::Drop));
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
    // Every ignored transition is decided before any AWS call; the requests counted
    // through the proxy show it, and the released composite alarm below shows that the
    // count sees the requests of a transition that acts.
    let requests = || proxy.stats().requests;
    for (file, kind) in [
        ("alarm-state-change-to-ok.json", "not-alarm"),
        ("alarm-state-change-to-insufficient-data.json", "not-alarm"),
        ("composite-alarm-actions-suppressed.json", "actions-suppressed"),
    ] {
        let before = requests();
        let outcome = invoke("rds-promoter", file);
        assert_eq!(outcome["action"], "ignored", "{file}: {outcome}");
        assert_eq!(outcome["ignoredBecause"]["kind"], kind, "{file}: {outcome}");
        assert_eq!(requests(), before, "{file}: an ignored alarm sent AWS requests");
    }
    // The direct alarm action obeys the same policy as the EventBridge rule: a first
    // evaluation (INSUFFICIENT_DATA -> ALARM) of the sample alarm does not act.
    let sample =
        |file: &str| -> serde_json::Value { serde_json::from_slice(&std::fs::read(event(file)).unwrap()).unwrap() };
    let mut first_evaluation = sample("alarm-action-direct-to-alarm.json");
    first_evaluation["alarmData"]["previousState"]["value"] = "INSUFFICIENT_DATA".into();
    let before = requests();
    let outcome = watch.invoke("rds-promoter", &first_evaluation).unwrap().unwrap();
    assert_eq!(outcome["ignoredBecause"]["kind"], "not-healthy-before", "{outcome}");
    assert_eq!(requests(), before, "a first evaluation sent AWS requests");
    let before = requests();
    let outcome = invoke("rds-promoter", "composite-alarm-actions-released.json");
    assert_eq!(
        outcome["action"], "dry-run",
        "the suppression ended: the actions run: {outcome}"
    );
    assert!(
        requests() > before,
        "a transition that acts is seen by the request count"
    );

    proxy.fail_region(PRIMARY, None);

    // The stream replicator reads the published active region (PARAMETER_PREFIX): while the
    // primary is active its batches replicate (after a failover they would be reconciled).
    ssm::put_parameter(&b, "/shop/failover/active-region", PRIMARY).await;

    // The sample batch with its records reversed: a key's changes now go backwards in
    // SequenceNumber. Refused as a whole, before any request.
    let mut reversed = sample("dynamodb-stream-batch.json");
    reversed["Records"].as_array_mut().unwrap().reverse();
    let before = requests();
    let refused = watch.invoke("stream-replicator", &reversed).unwrap().unwrap_err();
    assert_eq!(refused.error_type, "NonRetryable", "{refused:?}");
    assert!(refused.message.contains("SequenceNumber"), "{refused:?}");
    assert_eq!(requests(), before, "a refused batch sent AWS requests");

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

    // Nothing was dead-lettered, so the redrive finds nothing; it answers with its report.
    let redrive = invoke("stream-replicator", "stream-replicator-redrive.json");
    assert_eq!(
        (
            redrive["objects"].as_u64(),
            redrive["written"].as_u64(),
            redrive["more"].as_bool()
        ),
        (Some(0), Some(0), Some(false)),
        "{redrive}"
    );

    // The sample Parameter Store Change is the switch to the secondary.
    ssm::put_parameter(&b, "/shop/failover/active-region", SECONDARY).await;
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

/// A function whose configuration is wrong still answers, with the documented class and
/// message, instead of crashing at init with the error in Rust's debug form. The same
/// binary with a correct configuration (the test above) acts.
#[tokio::test]
async fn a_misconfigured_function_answers_every_invocation_with_a_classified_error() {
    let emu = Emulator::shared();
    let env: Vec<(String, String)> = emu
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .chain(
            [
                ("PRIMARY_REGION", PRIMARY),
                ("REPLICA_IDENTIFIER", "shop-db-replica"),
                ("REPLICA_REGION", "us-west-2; reboot"),
                ("ALLOWED_ALARM_PREFIXES", "shop-failover-"),
                ("PARAMETER_PREFIX", "/shop/failover"),
                ("STATE_TABLE", "shop-failover-state"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
        .collect();
    let log = std::env::temp_dir().join(format!("failover-misconfigured-watch-{}.log", std::process::id()));
    let watch = LambdaWatch::start(&failover_testkit::venv::repo_root(), &env, &log)
        .unwrap_or_else(|e| panic!("cargo lambda watch: {e}"));
    for _ in 0..2 {
        let error = watch
            .invoke_file("rds-promoter", &event("alarm-state-change-to-alarm.json"))
            .unwrap_or_else(|e| panic!("rds-promoter: {e}; see {}", log.display()))
            .expect_err("a misconfigured promoter never acts");
        assert_eq!(error.error_type, "NonRetryable", "{error:?}");
        // cargo lambda invoke may re-wrap a long message; the variable and its value are what count.
        let message: String = error.message.split_whitespace().collect();
        assert!(
            message.contains("invalidenvironmentvariableREPLICA_REGION=\"us-west-2;reboot\""),
            "{error:?}"
        );
    }
}
