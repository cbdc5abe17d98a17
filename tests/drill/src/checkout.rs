//! One checkout on one WordPress server, as a customer's browser places it: a POST to the
//! shop's orders endpoint (the drill's plugin), whose answer says what each store did (the
//! order row into MySQL, then its cart item into DynamoDB), so the RPO can be measured per
//! store. When WordPress cannot answer as the plugin (its database is down: WordPress's own
//! error page), or the server does not answer at all, the customer sees a failed checkout.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use failover_testkit::fixtures::node;
use failover_testkit::http;
use serde_json::Value;

/// How long a customer waits for the checkout page: PHP gives MySQL 2 s and each of up to
/// three DynamoDB attempts 2 s.
pub const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(10);
/// The plugin's REST route.
const ORDERS_PATH: &str = "/index.php?rest_route=/shop/v1/orders";

/// Where a server writes, as its configuration says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// `DB_HOST` (`host:port`).
    pub db_host: String,
    /// `DYNAMODB_REGION`.
    pub dynamodb_region: String,
}

impl ServerConfig {
    /// Parses a PHP-FPM pool file's `env[KEY] = value` lines or an env file's `KEY=value`
    /// lines (the last one wins, as in both); a missing key is an error naming it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let value = |key: &str| {
            text.lines()
                .rev()
                .filter_map(|line| line.split_once('='))
                .find(|(k, _)| {
                    let k = k.trim();
                    k == key || k.strip_prefix("env[").and_then(|k| k.strip_suffix(']')) == Some(key)
                })
                .map(|(_, v)| v.trim().to_owned())
                .ok_or_else(|| format!("the configuration has no {key}"))
        };
        Ok(Self {
            db_host: value("DB_HOST")?,
            dynamodb_region: value("DYNAMODB_REGION")?,
        })
    }

    /// The configuration the file `path` inside the node `root` holds now (it changes when
    /// env-rewriter repoints the server).
    pub fn of(root: &Path, path: &str) -> Result<Self, String> {
        let file = node::inside(root, path);
        let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        Self::parse(&text)
    }
}

/// What each store answered to one order.
#[derive(Debug, Clone)]
pub struct CheckoutResult {
    /// Where the server wrote: as the running PHP reported it, else as its pool file says.
    pub config: ServerConfig,
    /// The MySQL insert.
    pub mysql: Result<(), String>,
    /// The DynamoDB put (tried only when MySQL took the order, as a shop does).
    pub dynamodb: Result<(), String>,
}

/// The order's cart item key in the data table (the plugin writes `CART#%08d`).
pub fn cart_key(order_id: u64) -> String {
    format!("CART#{order_id:08}")
}

/// Places order `order_id` on the server answering at `http`; `configured` is what its pool
/// file says, for an answer that does not say.
pub fn place_order(http: SocketAddr, order_id: u64, configured: ServerConfig) -> CheckoutResult {
    match http::post_form(http, ORDERS_PATH, &format!("id={order_id}"), CHECKOUT_TIMEOUT) {
        Ok((status, body)) => read_answer(status, &body, configured),
        Err(e) => CheckoutResult {
            config: configured,
            mysql: Err(format!("no answer from the shop within {CHECKOUT_TIMEOUT:?}: {e}")),
            dynamodb: Err("not tried: the shop did not answer".into()),
        },
    }
}

/// The plugin's answer (201 both stores, 503 with each store's answer), or WordPress's.
fn read_answer(status: u16, body: &str, configured: ServerConfig) -> CheckoutResult {
    let answer: Option<Value> = serde_json::from_str(body).ok();
    let store = |name: &str| match answer.as_ref().and_then(|a| a[name].as_str()) {
        Some("ok") => Ok(()),
        Some(error) => Err(error.to_owned()),
        None => Err(format!("the shop's answer (HTTP {status}) says nothing of {name}")),
    };
    match answer.as_ref() {
        Some(a) if a.get("mysql").is_some() => CheckoutResult {
            config: ServerConfig {
                db_host: a["dbHost"].as_str().unwrap_or(&configured.db_host).to_owned(),
                dynamodb_region: a["dynamodbRegion"]
                    .as_str()
                    .unwrap_or(&configured.dynamodb_region)
                    .to_owned(),
            },
            mysql: store("mysql"),
            dynamodb: store("dynamodb"),
        },
        _ => CheckoutResult {
            config: configured,
            mysql: Err(format!("HTTP {status}: {}", headline(body))),
            dynamodb: Err("not tried: WordPress did not reach the checkout".into()),
        },
    }
}

/// The first heading of an HTML error page (WordPress's "Error establishing a database
/// connection"), else the body's start.
fn headline(body: &str) -> String {
    let heading = body
        .split_once("<h1>")
        .and_then(|(_, rest)| rest.split_once("</h1>"))
        .map(|(h, _)| h);
    heading
        .unwrap_or(body)
        .chars()
        .take(120)
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::{read_answer, ServerConfig};

    fn configured() -> ServerConfig {
        ServerConfig {
            db_host: "127.0.0.1:1".into(),
            dynamodb_region: "us-east-1".into(),
        }
    }

    #[test]
    fn the_pool_file_and_the_env_file_name_the_database_and_the_table_region() {
        let pool = "[shop]\nlisten = 127.0.0.1:9000\nenv[DB_HOST] = 127.0.0.1:4406\nenv[DYNAMODB_REGION] = us-west-2\n";
        let expected = ServerConfig {
            db_host: "127.0.0.1:4406".into(),
            dynamodb_region: "us-west-2".into(),
        };
        assert_eq!(ServerConfig::parse(pool), Ok(expected.clone()));
        let env_file = "AWS_REGION=us-east-1\nDYNAMODB_REGION=us-west-2\nDB_HOST=127.0.0.1:4406\n";
        assert_eq!(ServerConfig::parse(env_file), Ok(expected));
        assert_eq!(
            ServerConfig::parse("env[DB_HOST] = x:1\n"),
            Err("the configuration has no DYNAMODB_REGION".into())
        );
    }

    #[test]
    fn each_stores_answer_is_read_and_a_wordpress_error_page_fails_the_order() {
        let taken = read_answer(
            201,
            r#"{"order":7,"dbHost":"127.0.0.1:2","dynamodbRegion":"us-west-2","mysql":"ok","dynamodb":"ok"}"#,
            configured(),
        );
        assert!(taken.mysql.is_ok() && taken.dynamodb.is_ok());
        assert_eq!(taken.config.db_host, "127.0.0.1:2", "where the running PHP wrote");
        let half = read_answer(
            503,
            r#"{"dbHost":"127.0.0.1:2","mysql":"ok","dynamodb":"DynamoDB in us-east-1 answered HTTP 500"}"#,
            configured(),
        );
        assert!(half.mysql.is_ok());
        assert_eq!(half.dynamodb, Err("DynamoDB in us-east-1 answered HTTP 500".into()));
        let down = read_answer(
            500,
            "<html><body><div><h1>Error establishing a database connection</h1></div></body></html>",
            configured(),
        );
        assert_eq!(
            down.mysql,
            Err("HTTP 500: Error establishing a database connection".into())
        );
        assert!(down.dynamodb.is_err());
        assert_eq!(
            down.config,
            configured(),
            "the pool file says where it would have written"
        );
    }
}
