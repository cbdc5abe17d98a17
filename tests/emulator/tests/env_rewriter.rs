//! env-rewriter against the emulator: discovery by tags and state across pages, more than
//! 50 targets (so several SendCommand calls), the custom document, and Parameter Store.
//! The emulator's SSM agent runs the document on every targeted node (`fixtures::node`), so
//! the assertions are on the requests sent and on what the script did on each node.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use env_rewriter::adapters::{Ec2Instances, SsmCommands};
use env_rewriter::domain::{CommandBatch, CommandSettings, InstanceResult, InvocationStatus};
use env_rewriter::ports::CommandRunner;
use env_rewriter::{RewriteStatus as Status, Rewriter, RewriterConfig};
use failover_core::parameters::SsmParameters;
use failover_core::retry::Deadline;
use failover_core::{AwsFailure, EnvReader};
use failover_testkit::fixtures::{ec2, node, ssm};
use failover_testkit::{unique_name, Emulator, SECONDARY};

/// Records every SendCommand request on its way to the real client.
struct RecordingCommands {
    inner: SsmCommands,
    sent: Mutex<Vec<CommandBatch>>,
}

impl CommandRunner for RecordingCommands {
    async fn send(&self, batch: &CommandBatch, settings: &CommandSettings) -> Result<String, AwsFailure> {
        self.sent.lock().unwrap().push(batch.clone());
        self.inner.send(batch, settings).await
    }

    async fn invocation(&self, command_id: &str, instance_id: &str) -> Result<InvocationStatus, AwsFailure> {
        self.inner.invocation(command_id, instance_id).await
    }
}

type EmulatorRewriter = Rewriter<Ec2Instances, SsmCommands, RecordingCommands, SsmParameters>;

async fn rewriter(environment: &str, document: &str, prefix: &str) -> EmulatorRewriter {
    let b = Emulator::shared().clients(SECONDARY).await;
    let config = RewriterConfig::from_env(&EnvReader::from_pairs([
        ("APP_REGION", SECONDARY),
        ("ENVIRONMENT", environment),
        ("DOCUMENT_NAME", document),
        ("PARAMETER_PREFIX", prefix),
        ("ENV_FILE", "/etc/shop/failover.env"),
        ("POLL_INITIAL_MS", "20"),
        ("POLL_MAX_MS", "100"),
    ]))
    .unwrap();
    Rewriter::new(
        config,
        Ec2Instances::new(b.ec2.clone()),
        SsmCommands::new(b.ssm.clone()),
        RecordingCommands {
            inner: SsmCommands::new(b.ssm.clone()),
            sent: Mutex::new(Vec::new()),
        },
        SsmParameters::new(b.ssm.clone()),
    )
}

/// Registers the committed document (rendered from infra/ssm/repoint-app.sh) in the region.
async fn register_document() -> String {
    let b = Emulator::shared().clients(SECONDARY).await;
    let name = unique_name("repoint-app");
    ssm::create_command_document(&b, &name, &ssm::repoint_document()).await;
    name
}

#[tokio::test]
async fn more_than_fifty_tagged_servers_are_found_across_pages_and_commanded_in_batches() {
    let emu = Emulator::shared();
    let b = emu.clients(SECONDARY).await;
    let environment = unique_name("production");
    let magento = ec2::launch_app_servers(&b, "Magento", &environment, 55).await;
    let magento_roots = ec2::manage(emu, "Magento", &magento);
    let woo = ec2::launch_reservation(&b, "WooCommerce", &environment, 3).await;
    let woo_roots = ec2::manage(emu, "WooCommerce", &woo);
    let stopped = ec2::launch_app_servers(&b, "Magento", &environment, 2).await;
    ec2::manage(emu, "Magento", &stopped);
    ec2::stop_instances(&b, &stopped).await;
    let jenkins = ec2::launch_app_servers(&b, "Jenkins", &environment, 1).await;
    ec2::manage(emu, "Jenkins", &jenkins);
    let staging = ec2::launch_app_servers(&b, "Magento", &unique_name("staging"), 2).await;
    ec2::manage(emu, "Magento", &staging);
    let document = register_document().await;
    let rewriter = rewriter(&environment, &document, "/shop/failover").await;

    let event =
        serde_json::json!({"region": "us-west-2", "dbHost": "shop-db-replica.c9akciq32.us-west-2.rds.amazonaws.com"});
    let report = rewriter
        .handle(event, Deadline::after(Duration::from_secs(60)))
        .await
        .unwrap();

    let sent = rewriter_sent(&rewriter);
    assert_eq!(
        sent.len(),
        3,
        "55 Magento servers need two commands, the WooCommerce ones a third"
    );
    assert!(sent.iter().all(|b| b.instance_ids.len() <= 50));
    let commanded: BTreeSet<String> = sent.iter().flat_map(|b| b.instance_ids.clone()).collect();
    let expected: BTreeSet<String> = magento.iter().chain(&woo).cloned().collect();
    assert_eq!(
        commanded, expected,
        "exactly the running servers of this environment and these apps"
    );
    for batch in &sent {
        let profile = &batch.parameters["appProfile"];
        let all_woo = batch.instance_ids.iter().all(|id| woo.contains(id));
        assert_eq!(profile, if all_woo { "wordpress" } else { "magento" });
        assert_eq!(batch.parameters["region"], "us-west-2");
        assert_eq!(
            batch.parameters["dbHost"],
            "shop-db-replica.c9akciq32.us-west-2.rds.amazonaws.com"
        );
        assert_eq!(batch.comment, "failover manual us-west-2");
    }
    assert_eq!(report.status, Status::Success);
    assert_eq!(report.command_ids.len(), 3);
    assert_eq!(report.instances.len(), 58);
    assert!(report
        .instances
        .iter()
        .all(|i| matches!(i.result, InstanceResult::Success { .. })));
    // The agent ran the document on each node: its files now name the new database.
    for root in &magento_roots {
        assert!(node::read(root, "/var/www/magento/app/etc/env.php")
            .contains("'host' => 'shop-db-replica.c9akciq32.us-west-2.rds.amazonaws.com'"));
        assert!(node::read(root, node::ENV_FILE).contains("AWS_REGION=us-west-2"));
        assert!(
            node::calls(root).contains("systemctl reload-or-restart -- nginx"),
            "{}",
            node::calls(root)
        );
    }
    for root in &woo_roots {
        assert!(node::read(root, "/var/www/html/wp-config.php")
            .contains("'DB_HOST', 'shop-db-replica.c9akciq32.us-west-2.rds.amazonaws.com'"));
    }
    for root in ec2::manage(emu, "Magento", &stopped)
        .iter()
        .chain(&ec2::manage(emu, "Jenkins", &jenkins))
    {
        assert_eq!(node::calls(root), "", "a server outside the selection is untouched");
    }
}

fn rewriter_sent(rewriter: &EmulatorRewriter) -> Vec<CommandBatch> {
    rewriter.commands().sent.lock().unwrap().clone()
}

#[tokio::test]
async fn a_published_active_region_repoints_with_the_published_database() {
    let emu = Emulator::shared();
    let b = emu.clients(SECONDARY).await;
    let environment = unique_name("production");
    let servers = ec2::launch_app_servers(&b, "WooCommerce", &environment, 2).await;
    ec2::manage(emu, "WooCommerce", &servers);
    let document = register_document().await;
    let prefix = format!("/{}/failover", unique_name("shop"));
    ssm::put_parameter(
        &b,
        &format!("{prefix}/db-host"),
        "shop-db-replica.c9akciq32.us-west-2.rds.amazonaws.com",
    )
    .await;
    ssm::put_parameter(&b, &format!("{prefix}/db-port"), "3306").await;
    ssm::put_parameter(&b, &format!("{prefix}/active-region"), SECONDARY).await;
    let rewriter = rewriter(&environment, &document, &prefix).await;

    let mut event: serde_json::Value = serde_json::from_slice(
        &std::fs::read(failover_testkit::venv::repo_root().join("events/parameter-store-change.json")).unwrap(),
    )
    .unwrap();
    event["detail"]["name"] = format!("{prefix}/active-region").into();
    let report = rewriter
        .handle(event, Deadline::after(Duration::from_secs(60)))
        .await
        .unwrap();

    let sent = rewriter_sent(&rewriter);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].instance_ids, {
        let mut s = servers.clone();
        s.sort();
        s
    });
    assert_eq!(sent[0].parameters["dbPort"], "3306");
    assert_eq!(sent[0].parameters["appProfile"], "wordpress");
    assert_eq!(
        sent[0].comment, "failover active-region@2026-11-21T03:01:42Z/6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "the comment names the change event, the same on every delivery"
    );
    assert_eq!(report.status, Status::Success);
}

/// Issue 17's fleet: 60 servers, 2 with their agent offline, 1 whose web server fails.
/// Every other server is repointed (its files really rewritten); the three are reported
/// by name, counted in the alarm's metric, and the run is `partial`, never success.
#[tokio::test]
async fn one_bad_server_blocks_nobody_and_unreachable_ones_are_not_repointed() {
    let emu = Emulator::shared();
    let b = emu.clients(SECONDARY).await;
    let environment = unique_name("production");
    let servers = ec2::launch_app_servers(&b, "WooCommerce", &environment, 60).await;
    let roots = ec2::manage(emu, "WooCommerce", &servers);
    let (offline, failing) = (&servers[..2], &servers[2]);
    node::fail_restart(&roots[2], "nginx");
    for id in offline {
        emu.set_node_offline(id, true);
    }
    let document = register_document().await;
    let rewriter = rewriter(&environment, &document, "/shop/failover").await;

    let started = std::time::Instant::now();
    let event = serde_json::json!({
        "region": "us-west-2",
        "dbHost": "shop-db-replica.c9akciq32.us-west-2.rds.amazonaws.com",
        "reportPartial": true,
    });
    let report = rewriter
        .handle(event, Deadline::after(Duration::from_secs(120)))
        .await
        .expect("reportPartial answers a partial repoint with the report");
    let elapsed = started.elapsed();
    for id in offline {
        emu.set_node_offline(id, false);
    }

    let sent = rewriter_sent(&rewriter);
    let commanded: BTreeSet<String> = sent.iter().flat_map(|b| b.instance_ids.clone()).collect();
    assert_eq!(commanded.len(), 58, "every reachable server is commanded");
    assert!(offline.iter().all(|id| !commanded.contains(id)));
    assert_eq!(report.status, Status::Partial, "{report:?}");
    assert_eq!(report.instances.len(), 60, "every matching server is reported");
    let result = |id: &str| &report.instances.iter().find(|i| i.instance_id == id).unwrap().result;
    for id in offline {
        assert!(
            matches!(result(id), InstanceResult::Undeliverable { detail } if detail.contains("ConnectionLost")),
            "{:?}",
            result(id)
        );
    }
    assert!(
        matches!(result(failing), InstanceResult::Failed { stderr } if stderr.contains("reload-or-restart nginx failed")),
        "{:?}",
        result(failing)
    );
    let repointed: Vec<_> = servers[3..].iter().filter(|id| result(id).is_success()).collect();
    assert_eq!(repointed.len(), 57, "the failing server stopped nobody");
    let metrics = report.metric_line().render(0);
    assert_eq!(metrics["InstancesNotRepointed"], 3.0, "{metrics}");
    assert_eq!(metrics["InstancesUndeliverable"], 2.0, "{metrics}");
    assert_eq!(metrics["InstancesSucceeded"], 57.0, "{metrics}");
    for root in &roots[3..] {
        assert!(node::read(root, "/var/www/html/wp-config.php")
            .contains("'DB_HOST', 'shop-db-replica.c9akciq32.us-west-2.rds.amazonaws.com'"));
        assert!(node::read(root, node::ENV_FILE).contains("AWS_REGION=us-west-2"));
    }
    for root in &roots[..2] {
        assert_eq!(node::calls(root), "", "nothing ran on an offline node");
        assert!(node::read(root, "/var/www/html/wp-config.php").contains(node::OLD_DB_HOST));
    }
    println!(
        "fleet of 60: {} SendCommand calls, {} repointed, {} not repointed ({} undeliverable), {:.1} s",
        sent.len(),
        repointed.len(),
        metrics["InstancesNotRepointed"],
        metrics["InstancesUndeliverable"],
        elapsed.as_secs_f64()
    );
}

/// Without reportPartial a partial repoint is an error naming each server not repointed.
#[tokio::test]
async fn without_report_partial_the_servers_not_repointed_are_named_in_the_error() {
    let emu = Emulator::shared();
    let b = emu.clients(SECONDARY).await;
    let environment = unique_name("production");
    let servers = ec2::launch_app_servers(&b, "WooCommerce", &environment, 3).await;
    let roots = ec2::manage(emu, "WooCommerce", &servers);
    node::fail_restart(&roots[1], "nginx");
    emu.set_node_offline(&servers[2], true);
    let document = register_document().await;
    let rewriter = rewriter(&environment, &document, "/shop/failover").await;

    let event =
        serde_json::json!({"region": "us-west-2", "dbHost": "shop-db-replica.c9akciq32.us-west-2.rds.amazonaws.com"});
    let error = rewriter
        .handle(event, Deadline::after(Duration::from_secs(60)))
        .await
        .expect_err("a server was not repointed");
    emu.set_node_offline(&servers[2], false);

    assert_eq!(error.class(), failover_core::ErrorClass::Retryable, "{error}");
    let message = error.to_string();
    assert!(message.contains("2 of 3 servers were not repointed"), "{message}");
    assert!(
        message.contains(&servers[1]) && message.contains("reload-or-restart nginx failed"),
        "{message}"
    );
    assert!(
        message.contains(&servers[2]) && message.contains("undeliverable"),
        "{message}"
    );
    assert!(!message.contains(&servers[0]), "{message}");
    assert_eq!(node::calls(&roots[2]), "", "nothing ran on the offline node");
    assert!(node::read(&roots[0], "/var/www/html/wp-config.php").contains("shop-db-replica"));
}
