//! The emulator's SSM agent runs Command documents for real, on each managed node's own
//! file tree, as Systems Manager documents it (see `tools/fidelity/ssm_agent.py`): the
//! project's repoint document rewrites the node's files and calls its stubs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_ssm::error::ProvideErrorMetadata;
use aws_sdk_ssm::operation::get_command_invocation::GetCommandInvocationOutput;
use aws_sdk_ssm::types::CommandInvocationStatus as Status;
use failover_testkit::clients::RegionClients;
use failover_testkit::fixtures::{ec2, node, ssm};
use failover_testkit::{unique_name, Emulator, SECONDARY};

const NEW_DB: &str = "shop-db-replica.c9akciq32.us-west-2.rds.amazonaws.com";

async fn register_document(b: &RegionClients) -> String {
    let name = unique_name("agent-repoint");
    ssm::create_command_document(b, &name, &ssm::repoint_document()).await;
    name
}

/// The parameters env-rewriter sends to a Magento server.
fn magento_parameters(db_host: &str) -> HashMap<String, Vec<String>> {
    [
        ("appProfile", "magento"),
        ("region", SECONDARY),
        ("dbHost", db_host),
        ("dbPort", "3306"),
        ("appRoot", node::MAGENTO_ROOT),
        ("webUser", node::WEB_USER),
        ("envFile", node::ENV_FILE),
        ("regionKeys", "AWS_REGION,DYNAMODB_REGION"),
        ("dbHostKey", "DB_HOST"),
        ("services", "php-fpm,nginx"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), vec![v.to_owned()]))
    .collect()
}

async fn magento_nodes(b: &RegionClients, count: usize) -> (Vec<String>, Vec<PathBuf>) {
    let ids = ec2::launch_app_servers(b, "Magento", &unique_name("agent"), count).await;
    let roots = ec2::manage(Emulator::shared(), "Magento", &ids);
    (ids, roots)
}

async fn send(
    b: &RegionClients,
    document: &str,
    ids: &[String],
    parameters: HashMap<String, Vec<String>>,
    max_concurrency: &str,
    max_errors: &str,
) -> Result<String, String> {
    b.ssm
        .send_command()
        .document_name(document)
        .set_instance_ids(Some(ids.to_vec()))
        .set_parameters(Some(parameters))
        .max_concurrency(max_concurrency)
        .max_errors(max_errors)
        .send()
        .await
        .map(|o| o.command().and_then(|c| c.command_id()).unwrap().to_owned())
        .map_err(|e| {
            let e = e.into_service_error();
            format!("{}: {}", e.code().unwrap_or("?"), e.message().unwrap_or(""))
        })
}

/// Polls the invocation (bounded) until it has a final status.
async fn finished(b: &RegionClients, command_id: &str, instance_id: &str) -> GetCommandInvocationOutput {
    let started = Instant::now();
    loop {
        let output = b
            .ssm
            .get_command_invocation()
            .command_id(command_id)
            .instance_id(instance_id)
            .send()
            .await
            .unwrap();
        let pending = matches!(
            output.status(),
            Some(Status::Pending | Status::InProgress | Status::Delayed)
        );
        if !pending {
            return output;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{command_id} on {instance_id} never finished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_agent_runs_the_repoint_document_inside_each_nodes_own_tree() {
    let b = Emulator::shared().clients(SECONDARY).await;
    let document = register_document(&b).await;
    let (ids, roots) = magento_nodes(&b, 2).await;

    let command = send(&b, &document, &ids, magento_parameters(NEW_DB), "10", "0")
        .await
        .unwrap();
    for (id, root) in ids.iter().zip(&roots) {
        let done = finished(&b, &command, id).await;
        assert_eq!(
            done.status(),
            Some(&Status::Success),
            "{:?}",
            done.standard_error_content()
        );
        assert_eq!(done.response_code(), 0);
        assert!(done
            .standard_output_content()
            .unwrap_or_default()
            .contains("restarted=none reloaded=php-fpm nginx"));
        assert!(node::read(root, "/var/www/magento/app/etc/env.php").contains(&format!("'host' => '{NEW_DB}'")));
        let env = node::read(root, node::ENV_FILE);
        assert!(
            env.contains("AWS_REGION=us-west-2") && env.contains(&format!("DB_HOST={NEW_DB}")),
            "{env}"
        );
        let calls = node::calls(root);
        for expected in [
            "setup:config:set",
            "cache:flush",
            "systemctl reload-or-restart -- php-fpm",
            "systemctl reload-or-restart -- nginx",
        ] {
            assert!(calls.contains(expected), "{expected} in {calls}");
        }
    }
    let listed = b
        .ssm
        .list_command_invocations()
        .command_id(&command)
        .details(true)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.command_invocations().len(), 2);
    assert!(listed
        .command_invocations()
        .iter()
        .all(|i| i.status() == Some(&Status::Success)));

    // The same values again: the script finds nothing to change and restarts nothing.
    node::clear_calls(&roots[0]);
    let again = send(&b, &document, &ids[..1], magento_parameters(NEW_DB), "10", "0")
        .await
        .unwrap();
    let done = finished(&b, &again, &ids[0]).await;
    assert!(done
        .standard_output_content()
        .unwrap_or_default()
        .contains("changed=none restarted=none"));
    assert!(
        !node::calls(&roots[0]).contains("restart"),
        "{}",
        node::calls(&roots[0])
    );
}

#[tokio::test]
async fn a_hostile_parameter_value_is_refused_by_the_allowed_pattern_before_anything_runs() {
    let b = Emulator::shared().clients(SECONDARY).await;
    let document = register_document(&b).await;
    let (ids, roots) = magento_nodes(&b, 1).await;
    let refused = send(
        &b,
        &document,
        &ids,
        magento_parameters("x; touch /tmp/pwned"),
        "10",
        "0",
    )
    .await
    .expect_err("SSM refuses a value outside allowedPattern");
    assert!(refused.starts_with("InvalidParameters"), "{refused}");
    assert_eq!(node::calls(&roots[0]), "", "nothing ran");
    assert!(!node::inside(&roots[0], "/tmp/pwned").exists());
    assert!(node::read(&roots[0], node::ENV_FILE).contains(node::OLD_DB_HOST));
}

#[tokio::test]
async fn an_offline_node_is_undeliverable_and_a_failing_restart_fails_with_its_stderr() {
    let emu = Emulator::shared();
    let b = emu.clients(SECONDARY).await;
    let document = register_document(&b).await;
    let (ids, roots) = magento_nodes(&b, 3).await;
    emu.set_node_offline(&ids[0], true);
    node::fail_restart(&roots[1], "nginx");

    let command = send(&b, &document, &ids, magento_parameters(NEW_DB), "10", "2")
        .await
        .unwrap();
    let offline = finished(&b, &command, &ids[0]).await;
    assert_eq!(
        (offline.status(), offline.status_details()),
        (Some(&Status::Failed), Some("Undeliverable"))
    );
    assert_eq!(node::calls(&roots[0]), "", "an offline node runs nothing");
    let failing = finished(&b, &command, &ids[1]).await;
    assert_eq!((failing.status(), failing.response_code()), (Some(&Status::Failed), 1));
    assert!(
        failing
            .standard_error_content()
            .unwrap_or_default()
            .contains("systemctl reload-or-restart nginx failed"),
        "{:?}",
        failing.standard_error_content()
    );
    let healthy = finished(&b, &command, &ids[2]).await;
    assert_eq!(healthy.status(), Some(&Status::Success));
    emu.set_node_offline(&ids[0], false);
}

#[tokio::test]
async fn once_errors_exceed_max_errors_the_command_is_not_sent_to_the_remaining_nodes() {
    let b = Emulator::shared().clients(SECONDARY).await;
    let document = register_document(&b).await;
    let (ids, roots) = magento_nodes(&b, 3).await;
    for root in &roots {
        node::fail_restart(root, "nginx");
    }

    let command = send(&b, &document, &ids, magento_parameters(NEW_DB), "1", "0")
        .await
        .unwrap();
    let mut ran = 0;
    for (id, root) in ids.iter().zip(&roots) {
        let done = finished(&b, &command, id).await;
        if done.status() == Some(&Status::Failed) && done.response_code() == 1 {
            ran += 1;
        } else {
            assert!(
                matches!(done.status(), Some(Status::Cancelled)),
                "{:?} {:?}",
                done.status(),
                done.status_details()
            );
            assert_eq!(node::calls(root), "", "a node after the error limit runs nothing");
        }
    }
    assert_eq!(ran, 1, "one at a time, and the first error stops the rest");
}
