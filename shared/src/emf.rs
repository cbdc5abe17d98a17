//! CloudWatch Embedded Metric Format (EMF) lines.
//!
//! Lambda ships every stdout line to CloudWatch Logs, and CloudWatch extracts metrics from
//! lines in EMF, so metrics need no SDK call, no extra latency and no IAM permission.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// Metric units understood by CloudWatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A plain number of things.
    Count,
    /// Milliseconds.
    Milliseconds,
    /// Seconds.
    Seconds,
    /// Bytes.
    Bytes,
    /// A value without unit (e.g. a 0/1 health flag).
    None,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
            Unit::Bytes => "Bytes",
            Unit::None => "None",
        }
    }
}

/// CloudWatch limits one EMF directive to 100 metrics and 30 dimensions.
const MAX_METRICS: usize = 100;
const MAX_DIMENSIONS: usize = 30;

/// The CloudWatch namespace of every metric the functions emit.
pub const NAMESPACE: &str = "ShopFailover";

/// One EMF log line under construction: a namespace, one dimension set, metrics and properties.
#[derive(Debug, Clone)]
pub struct MetricLine {
    namespace: String,
    dimensions: BTreeMap<String, String>,
    metrics: Vec<(String, f64, Unit)>,
    properties: BTreeMap<String, Value>,
    high_resolution: bool,
}

impl MetricLine {
    /// Starts a line in `namespace` (e.g. `ShopFailover`).
    pub fn new(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            dimensions: BTreeMap::new(),
            metrics: Vec::new(),
            properties: BTreeMap::new(),
            high_resolution: false,
        }
    }

    /// Starts a line in [`NAMESPACE`] with the `Function` dimension.
    pub fn for_function(function: &str) -> Self {
        Self::new(NAMESPACE).dimension("Function", function)
    }

    /// The line every function emits when an invocation fails: `Errors = 1` with the
    /// error's class, so one alarm covers every function.
    pub fn invocation_error(function: &str, class: crate::error::ErrorClass) -> Self {
        Self::for_function(function)
            .metric("Errors", 1.0, Unit::Count)
            .property("ErrorType", class.as_str())
    }

    /// Adds a dimension (e.g. `Function`, `Region`); beyond CloudWatch's limit it is ignored.
    pub fn dimension(mut self, name: &str, value: &str) -> Self {
        if self.dimensions.len() < MAX_DIMENSIONS || self.dimensions.contains_key(name) {
            self.dimensions.insert(name.to_owned(), value.to_owned());
        }
        self
    }

    /// Records a metric; non-finite values are dropped because CloudWatch rejects them.
    pub fn metric(mut self, name: &str, value: f64, unit: Unit) -> Self {
        if value.is_finite() && self.metrics.len() < MAX_METRICS {
            self.metrics.push((name.to_owned(), value, unit));
        }
        self
    }

    /// Stores this line's metrics at one-second resolution (EMF `StorageResolution: 1`), so
    /// alarms can evaluate 10-second periods; standard resolution keeps one-minute data.
    pub fn high_resolution(mut self) -> Self {
        self.high_resolution = true;
        self
    }

    /// Adds a searchable property that is not a metric (e.g. the failover id).
    pub fn property(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.properties.insert(name.to_owned(), value.into());
        self
    }

    /// Renders the JSON document for a given epoch-millisecond timestamp.
    pub fn render(&self, timestamp_ms: i64) -> Value {
        let mut root = Map::new();
        for (k, v) in &self.properties {
            root.insert(k.clone(), v.clone());
        }
        for (k, v) in &self.dimensions {
            root.insert(k.clone(), Value::String(v.clone()));
        }
        for (name, value, _) in &self.metrics {
            root.insert(name.clone(), json!(value));
        }
        let definitions: Vec<Value> = self
            .metrics
            .iter()
            .map(|(name, _, unit)| match self.high_resolution {
                true => json!({"Name": name, "Unit": unit.as_str(), "StorageResolution": 1}),
                false => json!({"Name": name, "Unit": unit.as_str()}),
            })
            .collect();
        let dimension_names: Vec<&String> = self.dimensions.keys().collect();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [dimension_names],
                    "Metrics": definitions,
                }]
            }),
        );
        Value::Object(root)
    }

    /// Writes the line to stdout, where Lambda's log agent picks it up.
    pub fn emit(&self) {
        println!("{}", self.render(chrono::Utc::now().timestamp_millis()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_valid_emf_document() {
        let line = MetricLine::new("ShopFailover")
            .dimension("Function", "stream-replicator")
            .metric("RecordsWritten", 42.0, Unit::Count)
            .metric("ReplicationLagMaxMs", 1250.0, Unit::Milliseconds)
            .property("FailoverId", "alarm@2026-11-21T03:00:00Z")
            .render(1_700_000_000_000);
        assert_eq!(line["_aws"]["Timestamp"], 1_700_000_000_000i64);
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "ShopFailover");
        assert_eq!(directive["Dimensions"], json!([["Function"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "RecordsWritten", "Unit": "Count"}, {"Name": "ReplicationLagMaxMs", "Unit": "Milliseconds"}])
        );
        assert_eq!(line["RecordsWritten"], 42.0);
        assert_eq!(line["Function"], "stream-replicator");
        assert_eq!(line["FailoverId"], "alarm@2026-11-21T03:00:00Z");
    }

    #[test]
    fn a_high_resolution_line_stores_each_metric_at_one_second() {
        let line = MetricLine::new("N")
            .high_resolution()
            .metric("RegionHealthy", 1.0, Unit::Count)
            .render(0);
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["StorageResolution"],
            1
        );
        let standard = MetricLine::new("N").metric("RegionHealthy", 1.0, Unit::Count).render(0);
        assert!(standard["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]
            .get("StorageResolution")
            .is_none());
    }

    #[test]
    fn non_finite_values_are_dropped() {
        let line = MetricLine::new("N")
            .metric("Bad", f64::NAN, Unit::Count)
            .metric("Inf", f64::INFINITY, Unit::Count)
            .render(0);
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Metrics"], json!([]));
        assert!(line.get("Bad").is_none());
    }

    #[test]
    fn limits_are_enforced() {
        let mut line = MetricLine::new("N");
        for i in 0..150 {
            line = line
                .metric(&format!("M{i}"), 1.0, Unit::Count)
                .dimension(&format!("D{i}"), "v");
        }
        let doc = line.render(0);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap().len(),
            100
        );
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
                .as_array()
                .unwrap()
                .len(),
            30
        );
    }
}
