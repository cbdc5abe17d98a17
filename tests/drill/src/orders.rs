//! The drill's customers: their traffic through the failure, what the stores hold afterwards,
//! and the checks the shop owner cares about (checkout back, nothing lost that replication
//! could have saved, one writer).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use failover_testkit::fixtures::rds;

use crate::order_figures::{lost_outside_window, OrderFigures};
use crate::report::DrillReport;
use crate::scenario::Stage;
use crate::traffic::{AppServer, Traffic, TrafficSettings};
use crate::world::{World, DATA_TABLE, ORDERS_TABLE, PREFIX};

/// The longest checkout downtime a passing drill may have (detection, promotion, repointing
/// and the customers' next lookup, with room for a slow machine).
pub const DOWNTIME_LIMIT_SECONDS: f64 = 120.0;

/// Starts the customers: every WordPress server of both regions, routed by the active
/// region, reaching Parameter Store over the witness's link (they are not cut off by a
/// partition between the regions).
pub fn start_traffic(stage: &Stage<'_>) -> Traffic {
    let pool_file = stage.world.php.pool_file();
    let servers = stage
        .shops
        .servers
        .iter()
        .map(|server| AppServer {
            instance_id: server.instance_id.clone(),
            region: server.region.clone(),
            http: server.http,
            root: server.root.clone(),
            pool_file: pool_file.clone(),
        })
        .collect();
    Traffic::start(TrafficSettings {
        servers,
        orders_per_second: stage.options.orders_per_second,
        endpoint: stage.witness.link.endpoint(),
        active_region_parameter: format!("{PREFIX}/active-region"),
        started: stage.started,
    })
}

/// Waits (bounded) until the customers have had `orders` more orders acknowledged than
/// `since`, so what follows is measured with the shop taking orders again.
pub async fn until_acknowledged(traffic: &Traffic, since: u64, orders: u64, limit: Duration) {
    let started = Instant::now();
    while traffic.progress().0 < since + orders && started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Order ids in the orders table of the instance.
async fn mysql_orders(
    clients: &failover_testkit::clients::RegionClients,
    instance: &str,
) -> Result<BTreeSet<u64>, String> {
    let rows = rds::database(clients, instance)
        .await
        .run(&format!("SELECT id FROM {ORDERS_TABLE}"))
        .map_err(|e| format!("cannot read the orders of {instance}: {e}"))?;
    Ok(rows
        .into_iter()
        .filter_map(|row| row.first().and_then(|id| id.parse().ok()))
        .collect())
}

/// Order ids with a cart item in the region's data table.
async fn dynamodb_orders(clients: &failover_testkit::clients::RegionClients) -> Result<BTreeSet<u64>, String> {
    let mut ids = BTreeSet::new();
    let mut start = None;
    for _page in 0..1000 {
        let page = clients
            .dynamodb
            .scan()
            .table_name(DATA_TABLE)
            .filter_expression("begins_with(pk, :cart)")
            .expression_attribute_values(":cart", AttributeValue::S("CART#".into()))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| format!("cannot scan {DATA_TABLE} in {}: {e}", clients.region))?;
        for item in page.items() {
            if let Some(AttributeValue::N(id)) = item.get("order_id") {
                ids.insert(id.parse().map_err(|_| format!("order_id {id:?} is not a number"))?);
            }
        }
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(ids),
        }
    }
    Err(format!("{DATA_TABLE} in {}: more than 1000 scan pages", clients.region))
}

/// What the stores hold: the promoted database, the old primary (once it runs again), and
/// the secondary table.
pub async fn holdings(world: &World) -> Result<crate::order_figures::Holdings, String> {
    Ok(crate::order_figures::Holdings {
        promoted_mysql: mysql_orders(&world.b, &world.database.replica_id).await?,
        old_primary_mysql: mysql_orders(&world.a, &world.database.primary_id).await?,
        secondary_dynamodb: dynamodb_orders(&world.b).await?,
    })
}

/// The customers' checks, each one able to fail on its own defect.
pub fn check(report: &mut DrillReport, orders: &OrderFigures, promoted_endpoint: &str) {
    let back_on_promoted = orders.first_acknowledged_after_on.as_deref() == Some(promoted_endpoint);
    report.check(
        "checkout works again on the promoted database",
        back_on_promoted && orders.downtime_seconds.is_some_and(|s| s <= DOWNTIME_LIMIT_SECONDS),
        format!(
            "downtime {:?} s (limit {DOWNTIME_LIMIT_SECONDS} s), first order after the failure on {}, promoted {promoted_endpoint}",
            orders.downtime_seconds.map(|s| (s * 10.0).round() / 10.0),
            orders.first_acknowledged_after_on.as_deref().unwrap_or("nothing")
        ),
    );
    // Asynchronous replication may lose what was acknowledged after the copy was taken; an
    // order lost from before that, or acknowledged after the failure, is a defect.
    let lag = orders.replica_lag_at_promotion_seconds.unwrap_or(0.0);
    let mysql_outside = lost_outside_window(
        &orders.mysql,
        orders.failed_at_seconds,
        orders.failed_at_seconds - lag - 1.0,
    );
    let dynamodb_outside = lost_outside_window(
        &orders.dynamodb,
        orders.failed_at_seconds,
        orders.last_replication_read_seconds.unwrap_or(f64::INFINITY),
    );
    report.check(
        "orders lost only in the replication window",
        mysql_outside.is_empty() && dynamodb_outside.is_empty(),
        format!(
            "MySQL lost {:?} (outside the last {:.0} s of lag + 1 s: {mysql_outside:?}); DynamoDB lost {:?} (outside the last replication pass: {dynamodb_outside:?})",
            orders.mysql.lost,
            lag,
            orders.dynamodb.lost
        ),
    );
    report.check(
        "no order reached the old primary after the switch",
        orders.split_brain.is_empty(),
        format!(
            "{} orders placed after the switch are on the old primary {:?}",
            orders.split_brain.len(),
            orders.split_brain
        ),
    );
}
