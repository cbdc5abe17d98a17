//! One checkout on one app server, as the shop's code does it: the server's env file says
//! where it writes; the order row goes to MySQL, its cart item to DynamoDB. Each store's
//! answer is kept apart, so the RPO can be measured per store.

use std::path::Path;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use failover_testkit::fixtures::node;
use failover_testkit::mysql::Mysql;

use crate::world::{DATA_TABLE, ORDERS_TABLE};

/// How long a checkout waits for each store before it tells the customer it failed.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where a server writes, read from its env file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// `DB_HOST` (`host:port`).
    pub db_host: String,
    /// `DYNAMODB_REGION`.
    pub dynamodb_region: String,
}

impl ServerConfig {
    /// Parses the KEY=value env file; a missing key is an error naming it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let value = |key: &str| {
            text.lines()
                .rev()
                .filter_map(|line| line.split_once('='))
                .find(|(k, _)| k.trim() == key)
                .map(|(_, v)| v.trim().to_owned())
                .ok_or_else(|| format!("the env file has no {key}"))
        };
        Ok(Self {
            db_host: value("DB_HOST")?,
            dynamodb_region: value("DYNAMODB_REGION")?,
        })
    }

    /// The server's configuration now (it changes when env-rewriter repoints it).
    pub fn of(root: &Path) -> Result<Self, String> {
        let path = node::inside(root, node::ENV_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text)
    }

    fn database(&self) -> Result<Mysql, String> {
        let (host, port) = self
            .db_host
            .rsplit_once(':')
            .ok_or_else(|| format!("DB_HOST {:?} has no port", self.db_host))?;
        let port = port
            .parse()
            .map_err(|_| format!("DB_HOST {:?}: bad port", self.db_host))?;
        Ok(Mysql::new(host, port))
    }
}

/// What each store answered to one order.
#[derive(Debug, Clone)]
pub struct CheckoutResult {
    /// Where the server wrote.
    pub config: ServerConfig,
    /// The MySQL insert.
    pub mysql: Result<(), String>,
    /// The DynamoDB put (tried only when MySQL took the order, as a shop does).
    pub dynamodb: Result<(), String>,
}

/// The order's cart item key in the data table.
pub fn cart_key(order_id: u64) -> String {
    format!("CART#{order_id:08}")
}

/// Places order `order_id` through the server whose file tree is `root`; `dynamodb` returns
/// the client of a region (through the fault proxy).
pub async fn place_order(
    root: &Path,
    server: &str,
    order_id: u64,
    dynamodb: impl Fn(&str) -> Option<aws_sdk_dynamodb::Client>,
) -> Result<CheckoutResult, String> {
    let config = ServerConfig::of(root)?;
    let insert = format!(
        "INSERT INTO {ORDERS_TABLE} (id, server, placed_at) VALUES ({order_id}, '{}', NOW(6))",
        server.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "")
    );
    let mysql = match config.database() {
        // Blocking: the load generator's runtime is its own thread's, with nothing else on it.
        Ok(database) => database
            .run_within(&insert, STORE_TIMEOUT)
            .map(|_| ())
            .map_err(|e| e.message),
        Err(e) => Err(e),
    };
    let dynamodb = match (&mysql, dynamodb(&config.dynamodb_region)) {
        (Err(_), _) => Err("not tried: MySQL did not take the order".to_owned()),
        (Ok(()), None) => Err(format!("no client for {}", config.dynamodb_region)),
        (Ok(()), Some(client)) => {
            let put = client
                .put_item()
                .table_name(DATA_TABLE)
                .item("pk", AttributeValue::S(cart_key(order_id)))
                .item("sk", AttributeValue::S("META".into()))
                .item("order_id", AttributeValue::N(order_id.to_string()))
                .item("server", AttributeValue::S(server.to_owned()))
                .send();
            match tokio::time::timeout(STORE_TIMEOUT, put).await {
                Err(_) => Err(format!("no answer within {STORE_TIMEOUT:?}")),
                Ok(Err(e)) => Err(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string()),
                Ok(Ok(_)) => Ok(()),
            }
        }
    };
    Ok(CheckoutResult {
        config,
        mysql,
        dynamodb,
    })
}

#[cfg(test)]
mod tests {
    use super::ServerConfig;

    #[test]
    fn the_env_file_names_the_database_and_the_table_region() {
        let config = ServerConfig::parse("AWS_REGION=us-east-1\nDYNAMODB_REGION=us-west-2\nDB_HOST=127.0.0.1:4406\n");
        assert_eq!(
            config,
            Ok(ServerConfig {
                db_host: "127.0.0.1:4406".into(),
                dynamodb_region: "us-west-2".into()
            })
        );
        assert_eq!(
            ServerConfig::parse("DB_HOST=x:1\n"),
            Err("the env file has no DYNAMODB_REGION".into())
        );
    }
}
