//! The drill report as one self-contained HTML page (no script, no external resource): the
//! verdict, the figures, the timeline on a time axis (each phase a bar from one event to
//! the next, the failure and the recovery marked) with its events listed, the per-server
//! table and the checks.
//! Every text from the run is escaped, so a hostile tag value or error message shows as
//! text. The element ids (`verdict`, `figures`, `timeline`, `servers`, `checks`) are what
//! `scripts/check-report-page.sh` looks for in the page Chromium rendered.

use std::fmt::Write;

use serde_json::Value;

use crate::order_figures::OrderFigures;
use crate::report::DrillReport;

/// Width of the timeline's drawing area, pixels.
const AXIS_WIDTH: f64 = 900.0;
/// Height of one timeline row.
const ROW: f64 = 22.0;
/// Left margin of the time axis (the labels of the rows sit in it).
const LABEL_WIDTH: f64 = 60.0;

/// Text made safe for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Whether a timeline event marks the failure or the recovery of the primary region.
fn mark(event: &str) -> Option<&'static str> {
    if event.contains(" fails") {
        Some("failure")
    } else if event.contains(" recovers") {
        Some("recovery")
    } else {
        None
    }
}

/// Ten gridlines with their seconds (`decimals` after the point) along a time axis to `end`.
fn axis(svg: &mut String, end: f64, height: f64, decimals: usize) {
    for tick in 0..=10 {
        let at = end * f64::from(tick) / 10.0;
        let x = LABEL_WIDTH + at / end * AXIS_WIDTH;
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="0" y2="{0}" stroke="#ddd"/><text x="{x:.1}" y="{1}" font-size="10" text-anchor="middle">{at:.decimals$} s</text>"##,
            height - ROW,
            height - 6.0
        );
    }
}

/// The timeline as an SVG: one row per event, its bar running to the next event.
fn timeline_svg(report: &DrillReport) -> String {
    let end = report.timeline.last().map_or(1.0, |e| e.at_seconds).max(1.0);
    let x = |at: f64| LABEL_WIDTH + at / end * AXIS_WIDTH;
    let height = ROW * (report.timeline.len() as f64 + 2.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" role="img" aria-label="timeline">"#,
        LABEL_WIDTH + AXIS_WIDTH + 20.0
    );
    axis(&mut svg, end, height, 0);
    for (row, entry) in report.timeline.iter().enumerate() {
        let y = ROW * row as f64 + 4.0;
        let next = report.timeline.get(row + 1).map_or(entry.at_seconds, |n| n.at_seconds);
        let width = (x(next) - x(entry.at_seconds)).max(2.0);
        let class = mark(&entry.event).unwrap_or("phase");
        let _ = write!(
            svg,
            r#"<g class="event {class}"><title>{event}</title><text x="2" y="{ty:.1}" font-size="11">+{at:.1}</text><rect x="{bx:.1}" y="{y:.1}" width="{width:.1}" height="{bh:.1}" class="{class}"/></g>"#,
            event = escape(&entry.event),
            ty = y + 12.0,
            at = entry.at_seconds,
            bx = x(entry.at_seconds),
            bh = ROW - 8.0,
        );
        if let Some(kind) = mark(&entry.event) {
            let _ = write!(
                svg,
                r#"<line class="mark {kind}" x1="{0:.1}" x2="{0:.1}" y1="0" y2="{1}"/>"#,
                x(entry.at_seconds),
                height - ROW
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// The region-switch plan's steps as bars on the execution's time axis (from its history).
fn plan_svg(steps: &[Value]) -> String {
    let seconds = |step: &Value, key: &str| step[key].as_f64().unwrap_or_default();
    let end = steps
        .iter()
        .map(|s| seconds(s, "endedAtS").max(seconds(s, "startedAtS")))
        .fold(1.0, f64::max);
    let x = |at: f64| LABEL_WIDTH + at / end * AXIS_WIDTH;
    let height = ROW * (steps.len() as f64 + 2.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg id="plan-steps" xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" role="img" aria-label="region-switch plan steps">"#,
        LABEL_WIDTH + AXIS_WIDTH + 20.0
    );
    axis(&mut svg, end, height, 1);
    for (row, step) in steps.iter().enumerate() {
        let y = ROW * row as f64 + 4.0;
        let (from, to) = (seconds(step, "startedAtS"), seconds(step, "endedAtS"));
        let name = escape(step["step"].as_str().unwrap_or("?"));
        let _ = write!(
            svg,
            r#"<g class="step"><title>{name}: +{from:.2} s to +{to:.2} s, {visits} visit(s)</title><text x="2" y="{ty:.1}" font-size="11">{name}</text><rect class="phase" x="{bx:.1}" y="{y:.1}" width="{width:.1}" height="{bh:.1}"/></g>"#,
            visits = step["visits"],
            ty = y + 12.0,
            bx = x(from),
            width = (x(to) - x(from)).max(2.0),
            bh = ROW - 8.0,
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Height of the order-rate chart's drawing area.
const RATE_HEIGHT: f64 = 80.0;

/// Orders per second on the timeline's time axis: acknowledged (green) under failed (red),
/// with the failure, the switch and the recovery marked.
fn orders_svg(report: &DrillReport, orders: &OrderFigures) -> String {
    let end = report.timeline.last().map_or(1.0, |e| e.at_seconds).max(1.0);
    let x = |at: f64| LABEL_WIDTH + at / end * AXIS_WIDTH;
    let most = orders
        .rate
        .iter()
        .map(|r| r.acknowledged + r.failed)
        .max()
        .unwrap_or(1)
        .max(1);
    let y = |count: u32| RATE_HEIGHT * f64::from(count) / f64::from(most);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg id="orders" xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" role="img" aria-label="orders per second">"#,
        LABEL_WIDTH + AXIS_WIDTH + 20.0,
        RATE_HEIGHT + 20.0
    );
    let _ = write!(
        svg,
        r#"<text x="2" y="12" font-size="10">{most}/s</text><text x="2" y="{:.1}" font-size="10">0</text>"#,
        RATE_HEIGHT
    );
    let width = (AXIS_WIDTH / end).max(1.0);
    for second in &orders.rate {
        let (ok, failed) = (y(second.acknowledged), y(second.failed));
        let _ = write!(
            svg,
            r#"<g class="second"><title>{at} s: {a} acknowledged, {f} failed</title><rect class="acknowledged" x="{bx:.1}" y="{ay:.1}" width="{width:.1}" height="{ok:.1}"/><rect class="failed" x="{bx:.1}" y="{fy:.1}" width="{width:.1}" height="{failed:.1}"/></g>"#,
            at = second.second,
            a = second.acknowledged,
            f = second.failed,
            bx = x(f64::from(second.second)),
            ay = RATE_HEIGHT - ok,
            fy = RATE_HEIGHT - ok - failed,
        );
    }
    for (kind, at) in [
        ("failure", orders.failed_at_seconds),
        ("switch", orders.switched_at_seconds),
        ("recovery", orders.recovered_at_seconds),
    ] {
        let _ = write!(
            svg,
            r#"<line class="mark {kind}" x1="{0:.1}" x2="{0:.1}" y1="0" y2="{RATE_HEIGHT}"/><text x="{0:.1}" y="{1}" font-size="10" text-anchor="middle">{kind}</text>"#,
            x(at),
            RATE_HEIGHT + 14.0
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The orders' figures as table rows.
fn order_rows(orders: &OrderFigures) -> Vec<(String, String)> {
    let seconds = |v: Option<f64>| v.map_or("none".to_owned(), |s| format!("{s:.1} s"));
    let mut rows = vec![
        (
            format!("orders ({}/s)", orders.orders_per_second),
            format!(
                "{} attempted, {} acknowledged, {} failed",
                orders.attempted, orders.acknowledged, orders.failed
            ),
        ),
        (
            "checkout downtime (RTO)".into(),
            format!(
                "{} (first order after the failure on {})",
                seconds(orders.downtime_seconds),
                orders.first_acknowledged_after_on.as_deref().unwrap_or("nothing")
            ),
        ),
    ];
    for (store, figures) in [("MySQL", &orders.mysql), ("DynamoDB", &orders.dynamodb)] {
        rows.push((
            format!("RPO {store}"),
            format!(
                "{} lost of {} acknowledged {:?}",
                figures.lost.len(),
                figures.acknowledged,
                figures.lost
            ),
        ));
    }
    rows.push((
        "replica lag at promotion".into(),
        seconds(orders.replica_lag_at_promotion_seconds),
    ));
    rows.push((
        "orders on the old primary after the switch".into(),
        format!("{:?}", orders.split_brain),
    ));
    rows
}

/// The page.
pub fn render(report: &DrillReport) -> String {
    let verdict = if report.passed() { "PASSED" } else { "FAILED" };
    let mut page = String::new();
    let _ = write!(
        page,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Failover drill: {verdict}</title><style>
body{{font-family:sans-serif;margin:24px;color:#222}} h1.PASSED{{color:#176b2c}} h1.FAILED{{color:#b00020}}
table{{border-collapse:collapse;margin:8px 0 24px}} td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:13px}}
tr.fail td{{background:#fde7ea}} #events tr.failure td{{color:#b00020}} #events tr.recovery td{{color:#176b2c}} tr.pass td:first-child{{color:#176b2c}} tr.fail td:first-child{{color:#b00020;font-weight:bold}}
rect.phase{{fill:#6b8fd6}} rect.failure{{fill:#b00020}} rect.recovery{{fill:#176b2c}}
line.mark{{stroke-width:2;stroke-dasharray:4 3}} line.failure{{stroke:#b00020}} line.recovery{{stroke:#176b2c}} line.switch{{stroke:#6b8fd6}}
rect.acknowledged{{fill:#2e8b57}} rect.failed{{fill:#b00020}}
</style></head><body>
<h1 id="verdict" class="{verdict}">Failover drill {verdict}</h1>
<p id="scenario">scenario: {scenario}</p>
"#,
        scenario = escape(&report.scenario)
    );
    let figures = [
        (
            "writes acknowledged by the primary",
            report.writes_acknowledged.to_string(),
        ),
        ("acknowledged writes lost (RPO)", report.rpo_lost_writes.to_string()),
        (
            "records replicated",
            format!(
                "{} in {} invocations",
                report.records_replicated, report.replicator_invocations
            ),
        ),
        (
            "detection",
            format!(
                "{} monitor runs, {:.1} s back to back ({} s at one run per minute)",
                report.detection_runs, report.detection_seconds, report.detection_seconds_at_schedule
            ),
        ),
        (
            "automation (alarm to every server done)",
            format!("{:.1} s", report.automation_seconds),
        ),
        ("active region after failover", report.final_active_region.clone()),
        ("active region after failback", report.failback_active_region.clone()),
    ];
    let mut figures: Vec<(String, String)> = figures.into_iter().map(|(n, v)| (n.to_owned(), v)).collect();
    figures.extend(report.orders.iter().flat_map(order_rows));
    page.push_str("<h2>Figures</h2><table id=\"figures\">");
    for (name, value) in figures {
        let _ = write!(page, "<tr><th>{}</th><td>{}</td></tr>", escape(&name), escape(&value));
    }
    page.push_str("</table><h2>Timeline</h2>");
    page.push_str(&timeline_svg(report));
    if let Some(orders) = &report.orders {
        page.push_str("<h2>Orders per second</h2>");
        page.push_str(&orders_svg(report, orders));
    }
    if let Some(plan) = &report.plan {
        let steps = plan["timeline"].as_array().cloned().unwrap_or_default();
        let _ = write!(
            page,
            "<h2>Region-switch plan</h2><p id=\"plan-outcome\">{} in {} s ({} s waiting), from the execution history</p>",
            escape(plan["outcome"].as_str().unwrap_or("?")),
            plan["elapsedS"],
            plan["waitedS"]
        );
        page.push_str(&plan_svg(&steps));
    }
    page.push_str("<table id=\"events\"><tr><th>at</th><th>event</th></tr>");
    for entry in &report.timeline {
        let class = mark(&entry.event).unwrap_or("phase");
        let _ = write!(
            page,
            "<tr class=\"{class}\"><td>+{:.1} s</td><td>{}</td></tr>",
            entry.at_seconds,
            escape(&entry.event)
        );
    }
    page.push_str("</table>");
    page.push_str("<h2>App servers</h2><table id=\"servers\"><tr><th>instance</th><th>app</th><th>result</th></tr>");
    for instance in &report.instances {
        let field = |name: &str| escape(instance[name].as_str().unwrap_or("?"));
        let _ = write!(
            page,
            "<tr class=\"server\"><td>{}</td><td>{}</td><td>{}</td></tr>",
            field("instanceId"),
            field("app"),
            field("result")
        );
    }
    page.push_str(
        "</table><h2>Checks</h2><table id=\"checks\"><tr><th>result</th><th>check</th><th>observed</th></tr>",
    );
    for check in &report.checks {
        let (class, label) = if check.passed {
            ("pass", "PASS")
        } else {
            ("fail", "FAIL")
        };
        let _ = write!(
            page,
            "<tr class=\"check {class}\"><td>{label}</td><td>{}</td><td>{}</td></tr>",
            escape(&check.name),
            escape(&check.detail)
        );
    }
    page.push_str("</table></body></html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report() -> DrillReport {
        let mut report = DrillReport::default();
        let started = std::time::Instant::now();
        report.note(started, "provisioned");
        report.note(started, "region us-east-1 fails (every request answered 500)");
        report.note(started, "region us-east-1 recovers");
        report
            .instances
            .push(json!({"instanceId": "i-1", "app": "<script>alert(1)</script>", "result": "success"}));
        report.check("replica promoted", true, "available, writable");
        report.check(
            "every app server repointed",
            false,
            "1 of 2: i-2 \"unchanged\" & <b>stale</b>",
        );
        report
    }

    #[test]
    fn the_page_has_every_section_and_a_row_per_check_and_server() {
        let page = render(&report());
        for id in ["verdict", "figures", "timeline", "events", "servers", "checks"] {
            assert!(page.contains(&format!("id=\"{id}\"")), "no #{id}");
        }
        assert!(page.contains("Failover drill FAILED"));
        assert_eq!(page.matches("<tr class=\"check ").count(), 2);
        assert_eq!(page.matches("<tr class=\"check fail\">").count(), 1);
        assert_eq!(page.matches("<tr class=\"server\">").count(), 1);
        assert_eq!(page.matches("<g class=\"event ").count(), 3);
        assert!(page.contains("class=\"mark failure\"") && page.contains("class=\"mark recovery\""));
        assert!(!page.contains("id=\"orders\""), "no traffic, no order chart");
    }

    #[test]
    fn the_orders_chart_has_a_bar_per_second_and_the_figures_their_rows() {
        let mut report = report();
        report.orders = Some(OrderFigures {
            orders_per_second: 20,
            rate: vec![
                crate::order_figures::OrderRate {
                    second: 0,
                    acknowledged: 20,
                    failed: 0,
                },
                crate::order_figures::OrderRate {
                    second: 1,
                    acknowledged: 3,
                    failed: 2,
                },
            ],
            mysql: crate::order_figures::StoreFigures {
                acknowledged: 23,
                lost: vec![7],
                lost_placed_at_seconds: vec![0.8],
                lost_at_seconds: vec![0.9],
            },
            ..OrderFigures::default()
        });
        let page = render(&report);
        assert!(page.contains("id=\"orders\""));
        assert_eq!(page.matches("<g class=\"second\">").count(), 2);
        assert!(page.contains("1 lost of 23 acknowledged [7]"));
        assert!(page.contains("class=\"mark switch\""));
    }

    #[test]
    fn the_plan_chart_has_a_bar_per_step_of_the_execution_history() {
        let mut with_plan = report();
        with_plan.plan = Some(json!({
            "outcome": "switched",
            "elapsedS": 6.5,
            "waitedS": 3.0,
            "timeline": [
                {"step": "Promote", "visits": 1, "startedAtS": 0.1, "endedAtS": 1.2, "spentS": 1.1},
                {"step": "CheckWritable", "visits": 3, "startedAtS": 1.3, "endedAtS": 4.0, "spentS": 0.6}
            ]
        }));
        let page = render(&with_plan);
        assert_eq!(page.matches("<g class=\"step\">").count(), 2);
        assert!(page.contains("<svg id=\"plan-steps\"") && page.contains(">switched in 6.5 s"));
        assert!(!render(&report()).contains("plan-steps"), "no plan, no chart");
    }

    #[test]
    fn text_from_the_run_is_shown_never_interpreted() {
        let page = render(&report());
        assert!(!page.contains("<script>"), "a tag value became markup");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("i-2 &quot;unchanged&quot; &amp; &lt;b&gt;stale&lt;/b&gt;"));
        assert!(
            !page.contains("src=") && !page.contains("href="),
            "self-contained: nothing to fetch"
        );
    }
}
