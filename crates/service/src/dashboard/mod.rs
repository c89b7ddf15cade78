//! The dashboard for people (`GET /dashboard`): a page embedded in the
//! binary, and the HTML fragments its script fetches with the caller's key,
//! drawn here from the use cases' results (charts as SVG by
//! [`charts`], tables as HTML). Every text that comes from a caller or the
//! configuration is escaped.
//!
//! Sign-in is with an API key kept in the tab's `sessionStorage` and sent as
//! `Authorization: Bearer` on each fetch, never in a cookie: the browser
//! attaches nothing by itself, so there is no cross-site request to forge.

pub mod charts;

use crate::ops::classify::ClassifyResponse;
use crate::ops::dashboard::DashboardReport;
use charts::{ChartError, Series};
use harpoon_bridge::Phase;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The page: a sign-in form and the frame the panels are fetched into.
pub const PAGE: &str = include_str!("assets/index.html");
/// The page's script.
pub const SCRIPT: &str = include_str!("assets/dashboard.js");
/// The page's style sheet.
pub const STYLE: &str = include_str!("assets/dashboard.css");

/// The page's embedded assets by name, with their content type.
pub fn asset(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "dashboard.js" => Some(("text/javascript; charset=utf-8", SCRIPT)),
        "dashboard.css" => Some(("text/css; charset=utf-8", STYLE)),
        _ => None,
    }
}

/// Escapes text for HTML content and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A bucket's start as its tick shows it: `HH:MM` within a day, `MM-DD HH:00` over a week.
fn tick(ms: i64, week: bool) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1_000)) else {
        return String::new();
    };
    if week {
        format!("{:02}-{:02} {:02}h", u8::from(t.month()), t.day(), t.hour())
    } else {
        format!("{:02}:{:02}", t.hour(), t.minute())
    }
}

/// Values per bucket of each key `key_of` picks from a bucket row.
fn series_by(
    report: &DashboardReport,
    n: usize,
    key_of: impl Fn(&crate::storage::usage::UsageBucket) -> String,
    value_of: impl Fn(&crate::storage::usage::UsageBucket) -> f64,
) -> Vec<Series> {
    let mut by: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for b in &report.buckets {
        let i = usize::try_from((b.start - report.since) / report.bucket_ms.max(1)).unwrap_or(0);
        let values = by.entry(key_of(b)).or_insert_with(|| vec![0.0; n]);
        if let Some(v) = values.get_mut(i) {
            *v += value_of(b);
        }
    }
    by.into_iter()
        .map(|(name, values)| Series { name, values })
        .collect()
}

fn figure(chart: &str, total: Option<i64>, svg: Result<String, ChartError>) -> String {
    let total = total.map_or(String::new(), |t| format!(" data-total=\"{t}\""));
    match svg {
        Ok(svg) => format!("<figure class=\"chart\" data-chart=\"{chart}\"{total}>{svg}</figure>"),
        Err(e) => {
            tracing::error!(error = %e, chart, "a dashboard chart could not be drawn");
            format!(
                "<figure class=\"chart\" data-chart=\"{chart}\"><p class=\"error\">{}</p></figure>",
                escape(&e.to_string())
            )
        }
    }
}

fn ms(v: f64) -> String {
    format!("{v:.1}")
}

/// The panels for a report: traffic, latency, models, hosted·ai and strikes.
pub fn panels(report: &DashboardReport) -> String {
    let n = usize::try_from((report.until - report.since) / report.bucket_ms.max(1))
        .unwrap_or(1)
        .max(1);
    let week = report.window == "7d";
    let categories: Vec<String> = (0..n)
        .map(|i| tick(report.since + i as i64 * report.bucket_ms, week))
        .collect();
    let requests: i64 = report.buckets.iter().map(|b| b.requests).sum();
    let errors: i64 = report.buckets.iter().map(|b| b.errors).sum();
    let prompt: i64 = report.buckets.iter().map(|b| b.prompt_tokens).sum();
    let completion: i64 = report.buckets.iter().map(|b| b.completion_tokens).sum();
    let scope = report
        .tenant
        .as_deref()
        .map_or_else(|| "every tenant".to_owned(), |t| format!("tenant {t}"));
    let mut html = String::new();
    let _ = write!(
        html,
        "<section class=\"panel wide\" id=\"traffic\"><h2>Traffic, last {window}, {scope}</h2>\
         <p class=\"totals\"><b data-stat=\"requests\">{requests}</b> requests \
         (<b data-stat=\"errors\">{errors}</b> errors), <b data-stat=\"prompt-tokens\">{prompt}</b> prompt and \
         <b data-stat=\"completion-tokens\">{completion}</b> generated tokens</p><div class=\"charts\">",
        window = escape(&report.window),
        scope = escape(&scope),
    );
    let by_model = series_by(report, n, |b| b.model.clone(), |b| b.requests as f64);
    html.push_str(&figure(
        "requests-by-model",
        Some(requests),
        charts::stacked_bars("Requests by model", "requests", &categories, &by_model),
    ));
    let tokens = series_by(
        report,
        n,
        |b| b.model.clone(),
        |b| (b.prompt_tokens + b.completion_tokens) as f64,
    );
    html.push_str(&figure(
        "tokens-by-model",
        Some(prompt + completion),
        charts::lines("Tokens by model", "tokens", &categories, &tokens),
    ));
    let by_tenant = series_by(report, n, |b| b.tenant.clone(), |b| b.requests as f64);
    html.push_str(&figure(
        "requests-by-tenant",
        Some(requests),
        charts::stacked_bars("Requests by tenant", "requests", &categories, &by_tenant),
    ));
    let mut tiers: BTreeMap<String, i64> = BTreeMap::new();
    for b in &report.buckets {
        let tier = if b.tier.is_empty() { "none" } else { &b.tier };
        *tiers.entry(tier.to_owned()).or_default() += b.requests;
    }
    for tier in ["small", "large"] {
        tiers.entry(tier.to_owned()).or_default();
    }
    let split: Vec<(String, f64)> = tiers.into_iter().map(|(t, v)| (t, v as f64)).collect();
    html.push_str(&figure(
        "routing-split",
        Some(requests),
        charts::horizontal_bars("Routing split by tier", "requests", &split),
    ));
    html.push_str("</div></section>");
    latency_panel(&mut html, report);
    models_panel(&mut html, report);
    pools_panel(&mut html, report);
    strikes_panel(&mut html, report);
    html
}

fn latency_panel(html: &mut String, report: &DashboardReport) {
    html.push_str("<section class=\"panel wide\" id=\"latency\"><h2>Latency per model</h2>");
    if report.timings.is_empty() {
        html.push_str("<p class=\"empty\">No successful request in this window.</p></section>");
        return;
    }
    html.push_str("<div class=\"charts\">");
    let mut latency = Vec::new();
    let mut ttft = Vec::new();
    for t in &report.timings {
        latency.push((format!("{} p50", t.model), t.latency_p50_ms));
        latency.push((format!("{} p99", t.model), t.latency_p99_ms));
        if let (Some(p50), Some(p99)) = (t.ttft_p50_ms, t.ttft_p99_ms) {
            ttft.push((format!("{} p50", t.model), p50));
            ttft.push((format!("{} p99", t.model), p99));
        }
    }
    html.push_str(&figure(
        "latency",
        None,
        charts::horizontal_bars("Request latency", "ms", &latency),
    ));
    html.push_str(&figure(
        "ttft",
        None,
        charts::horizontal_bars("Time to first token", "ms", &ttft),
    ));
    html.push_str(
        "</div><table><thead><tr><th>model</th><th>requests</th><th>p50 ms</th><th>p99 ms</th>\
         <th>TTFT p50 ms</th><th>TTFT p99 ms</th><th>tokens/s p50</th></tr></thead><tbody>",
    );
    let opt = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), ms);
    for t in &report.timings {
        let _ = write!(
            html,
            "<tr data-model=\"{m}\"><td>{m}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            t.requests,
            ms(t.latency_p50_ms),
            ms(t.latency_p99_ms),
            opt(t.ttft_p50_ms),
            opt(t.ttft_p99_ms),
            opt(t.tokens_per_second_p50),
            m = escape(&t.model),
        );
    }
    html.push_str("</tbody></table>");
    if report.timings_sampled {
        html.push_str(
            "<p class=\"note\">Figures over the newest 50,000 requests of the window.</p>",
        );
    }
    html.push_str("</section>");
}

fn models_panel(html: &mut String, report: &DashboardReport) {
    // Titled for what it will list: deployments, once a model has several.
    html.push_str(
        "<section class=\"panel\" id=\"deployments\"><h2>Models and engines</h2><table><thead><tr>\
         <th>model</th><th>engine</th><th>tier</th><th>state</th><th>load</th></tr></thead><tbody>",
    );
    for m in &report.models {
        let state = if m.available {
            "available"
        } else {
            "unavailable"
        };
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{state}\">{state}</td><td>{}</td></tr>",
            escape(&m.id),
            escape(&m.engine),
            escape(m.tier.as_deref().unwrap_or("router")),
            escape(m.load_state.as_deref().unwrap_or("–")),
        );
    }
    html.push_str("</tbody></table>");
    if let Some(deployments) = &report.deployments {
        html.push_str(
            "<table id=\"deployment-list\"><thead><tr><th>deployment</th><th>role</th><th>engine</th>\
             <th>breaker</th><th>in flight</th><th>queued</th><th>recent TTFT</th><th>served</th>\
             <th>failed</th></tr></thead><tbody>",
        );
        for d in deployments {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"breaker-{}\">{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&d.id),
                escape(&d.role),
                escape(&d.engine),
                escape(&d.breaker),
                escape(&d.breaker),
                d.in_flight,
                d.queued,
                d.recent_ttft_ms
                    .map_or_else(|| "–".to_owned(), |t| format!("{t:.0} ms")),
                d.served,
                d.failures,
            );
        }
        html.push_str("</tbody></table>");
    }
    html.push_str("</section>");
}

fn pools_panel(html: &mut String, report: &DashboardReport) {
    html.push_str("<section class=\"panel\" id=\"pools\"><h2>hosted·ai pools</h2>");
    let Some(pools) = &report.pools else {
        html.push_str("<p class=\"empty\">hosted·ai is not configured.</p></section>");
        return;
    };
    if let Some(hours) = pools.tenant_vgpu_hours {
        let _ = write!(
            html,
            "<p>This tenant's share since start: <b>{hours:.3}</b> vGPU-hours, estimated cost <b>{:.4}</b>.</p>",
            pools.estimated_cost
        );
    } else {
        let _ = write!(
            html,
            "<p>Estimated cost since start: <b>{:.4}</b>.</p><table><thead><tr><th>model</th><th>pool</th>\
             <th>state</th><th>vGPUs</th><th>vGPU-hours</th><th>cost so far</th></tr></thead><tbody>",
            pools.estimated_cost
        );
        for s in &pools.subscriptions {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.4}</td></tr>",
                escape(&s.model),
                escape(&s.pool_id),
                escape(&s.state),
                s.vgpus,
                s.vgpu_hours,
                s.cost_so_far
            );
        }
        if pools.subscriptions.is_empty() {
            html.push_str("<tr><td colspan=\"6\" class=\"empty\">No subscription held.</td></tr>");
        }
        html.push_str("</tbody></table>");
    }
    if !pools.models.is_empty() {
        html.push_str("<ul class=\"states\">");
        for (model, state) in &pools.models {
            let _ = write!(
                html,
                "<li>{}: <span class=\"{s}\">{s}</span></li>",
                escape(model),
                s = escape(state)
            );
        }
        html.push_str("</ul>");
    }
    html.push_str("</section>");
}

fn strikes_panel(html: &mut String, report: &DashboardReport) {
    html.push_str("<section class=\"panel\" id=\"strikes\"><h2>Strikes</h2>");
    if report.strikes.is_empty() {
        html.push_str("<p class=\"empty\">No strike in this window.</p></section>");
        return;
    }
    for s in &report.strikes {
        // Progress: repositories past the point of no further work.
        let finished = s
            .repos
            .iter()
            .filter(|r| {
                matches!(
                    r.phase,
                    Phase::Done | Phase::Failed | Phase::Cancelled | Phase::Interrupted
                )
            })
            .count();
        let _ = write!(
            html,
            "<div class=\"strike\"><h3>{} <small>{} · {}</small></h3>\
             <progress max=\"{}\" value=\"{finished}\"></progress><ul>",
            escape(&s.run_id),
            escape(&s.covenant_id),
            escape(&s.state),
            s.repos.len().max(1),
        );
        for r in &s.repos {
            let phase = r.phase.as_str();
            let _ = write!(
                html,
                "<li>{}: <span class=\"phase\">{}</span>{}</li>",
                escape(&r.repo),
                escape(phase),
                r.error
                    .as_deref()
                    .map(|e| format!(" <span class=\"error\">{}</span>", escape(e)))
                    .unwrap_or_default()
            );
        }
        html.push_str("</ul></div>");
    }
    html.push_str("</section>");
}

/// The router's answer: tier, complexity and the signals as bars.
pub fn router_result(result: &ClassifyResponse) -> String {
    let tier = result.tier.as_str();
    let signals: Vec<(String, f64)> = result
        .signals
        .iter()
        .flatten()
        .map(|s| (s.signal.clone(), f64::from(s.weight)))
        .collect();
    let mut html = String::new();
    let _ = write!(
        html,
        "<p class=\"decision\">Tier <b data-tier=\"{t}\">{t}</b>, complexity <b data-complexity>{:.3}</b>, \
         model <b>{}</b> ({:.3} ms)</p>",
        result.complexity,
        escape(&result.model),
        result.latency_ms,
        t = escape(tier),
    );
    html.push_str(&figure(
        "signals",
        i64::try_from(signals.len()).ok(),
        charts::horizontal_bars("Signals behind it", "weight", &signals),
    ));
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<img src=x onerror="a">&'"#),
            "&lt;img src=x onerror=&quot;a&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn ticks_are_utc() {
        assert_eq!(tick(0, false), "00:00");
        assert_eq!(tick(86_400_000 + 5 * 3_600_000, true), "01-02 05h");
    }
}
