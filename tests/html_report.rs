//! The HTML audit report, read by a real browser: Debian's headless Chromium loads the file
//! written by `ksensor replay --report-html` for the staged enterprise capture (with its
//! inventory), dumps the DOM, and every host row and every count is checked against the JSON
//! report of the same run. A screenshot is kept in the test's target directory (an artifact,
//! not committed). The same page with scripts blocked shows the same rows; the file fetches
//! nothing; hostile names are shown as text.
//!
//! Scripts are blocked through the page's own Content-Security-Policy (`script-src 'none'`),
//! not `--blink-settings=scriptEnabled=false`: with that switch Chromium 156's headless
//! `--dump-dom` prints nothing at all, so it could not show what was rendered.
//!
//! Skipped, with a printed reason, only when no `chromium` is installed (CI installs it).
//! Every browser run is bounded by [`BROWSER_TIMEOUT`].

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ksensor, repo_root};
use serde_json::Value;

/// A cold headless Chromium loads and dumps this page in about 2 s on the 2-core CI machine.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Runs headless Chromium on `page` with `args`; its standard output (the DOM dump) goes to a
/// file so that a large page never blocks on a full pipe.
fn browse(browser: &str, dir: &Path, page: &Path, args: &[String]) -> String {
    let out_path = dir.join(format!(
        "{}.out",
        page.file_name().and_then(|n| n.to_str()).unwrap_or("page")
    ));
    let profile = tempfile::tempdir().expect("profile dir");
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(std::fs::File::create(&out_path).expect("dump file"))
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "chromium failed: {status:?}");
            break;
        }
        if start.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {BROWSER_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::read_to_string(&out_path).expect("dump")
}

fn dump(browser: &str, dir: &Path, page: &Path) -> String {
    let dom = browse(browser, dir, page, &["--dump-dom".to_string()]);
    assert!(
        dom.contains("</html>"),
        "no DOM dumped for {}",
        page.display()
    );
    dom
}

/// Text of HTML: tags dropped, the entities Chromium's serialiser writes decoded.
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The part of `html` between `start` and the next `end` after it.
fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("{start} not in page"));
    let rest = &html[from..];
    let to = rest.find(end).unwrap_or(rest.len());
    &rest[..to]
}

/// Rows of the host table: per row, `(cell class, cell text)` in order.
fn host_rows(dom: &str) -> Vec<Vec<(String, String)>> {
    let table = between(dom, "<table id=\"hosts\"", "</table>");
    let body = between(table, "<tbody>", "</tbody>");
    body.split("<tr")
        .skip(1)
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|cell| {
                    let class = cell
                        .split_once("class=\"")
                        .and_then(|(_, r)| r.split_once('"'))
                        .map(|(c, _)| c.split(' ').next().unwrap_or("").to_string())
                        .unwrap_or_default();
                    let inner = cell.split_once('>').map_or("", |(_, r)| r);
                    let inner = inner.split("</td>").next().unwrap_or("");
                    (class, text(inner))
                })
                .collect()
        })
        .collect()
}

/// Counts shown in a chart's table: key → number.
fn counts(dom: &str, chart: &str) -> Vec<(String, u64)> {
    let table = between(dom, &format!("data-chart=\"{chart}\""), "</table>");
    table
        .split("data-key=\"")
        .skip(1)
        .map(|part| {
            let (key, rest) = part.split_once('"').expect("key");
            let n = rest
                .split_once('>')
                .and_then(|(_, r)| r.split_once('<'))
                .map(|(n, _)| n.parse::<u64>().expect("number"))
                .expect("count");
            (text(key), n)
        })
        .collect()
}

fn or_dash(v: &Value) -> String {
    v.as_str().unwrap_or("–").to_string()
}

/// What the JSON report says each host row shows.
fn expected_rows(report: &Value) -> Vec<Vec<(String, String)>> {
    report["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .map(|h| {
            let managed: Vec<String> = h["managed_by"]
                .as_array()
                .expect("managed_by")
                .iter()
                .map(
                    |m| match (m["cloud_console"].as_str(), m["address"].as_str()) {
                        (Some(name), _) => format!("cloud-console:{name}"),
                        (None, Some(a)) => a.to_string(),
                        _ => "?".to_string(),
                    },
                )
                .collect();
            let vlans: Vec<String> = h["vlans"]
                .as_array()
                .expect("vlans")
                .iter()
                .map(|v| v.to_string())
                .collect();
            [
                ("verdict", or_dash(&h["verdict"])),
                ("ip", or_dash(&h["ip"])),
                ("vlan", vlans.join(" ")),
                (
                    "asset",
                    h["asset"]["label"].as_str().unwrap_or("").to_string(),
                ),
                ("certainty", or_dash(&h["certainty"])),
                ("product", or_dash(&h["product"])),
                ("managed-by", managed.join(" ")),
                ("reason", or_dash(&h["reason"])),
                ("first-seen", or_dash(&h["first_seen"])),
                ("last-seen", or_dash(&h["last_seen"])),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
        })
        .collect()
}

fn tally(report: &Value, field: &str) -> Vec<(String, u64)> {
    let mut m = std::collections::BTreeMap::new();
    for h in report["hosts"].as_array().expect("hosts") {
        if let Some(v) = h[field].as_str() {
            *m.entry(v.to_string()).or_insert(0u64) += 1;
        }
    }
    m.into_iter().collect()
}

struct Run {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    html: PathBuf,
    report: Value,
}

fn replay_staged_enterprise() -> Run {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let (html, json) = (dir.join("report.html"), dir.join("report.json"));
    let o = ksensor()
        .current_dir(repo_root())
        .args(["replay", "--quiet", "--workers", "1", "--inventory"])
        .arg("pcaps/staged-enterprise-inventory.csv")
        .arg("--report")
        .arg(&json)
        .arg("--report-html")
        .arg(&html)
        .arg("pcaps/staged-enterprise.pcap")
        .output()
        .expect("run ksensor");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = serde_json::from_slice(&std::fs::read(&json).expect("json")).expect("report");
    Run {
        _tmp: tmp,
        dir,
        html,
        report,
    }
}

fn check_page(dom: &str, report: &Value) {
    let rows = host_rows(dom);
    let want = expected_rows(report);
    assert!(!want.is_empty());
    assert_eq!(rows.len(), want.len(), "host rows");
    for (got, want) in rows.iter().zip(&want) {
        assert_eq!(got, want);
    }
    let verdicts: Vec<(String, u64)> = report["verdicts"]
        .as_object()
        .expect("verdicts")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().expect("n")))
        .collect();
    assert_eq!(counts(dom, "verdict"), verdicts);
    assert_eq!(counts(dom, "certainty"), tally(report, "certainty"));
    assert_eq!(counts(dom, "product"), tally(report, "product"));
    assert_eq!(
        text(between(dom, "<span id=\"host-count\">", "</span>")),
        want.len().to_string()
    );
    // Every host has its evidence section, every input its row with its digest.
    for h in report["hosts"].as_array().expect("hosts") {
        let ip = h["ip"].as_str().expect("ip");
        assert!(
            dom.contains(&format!("<span class=\"mono\">{ip}</span> — ")),
            "no evidence section for {ip}"
        );
    }
    for i in report["inputs"].as_array().expect("inputs") {
        assert!(dom.contains(i["sha256"].as_str().expect("digest")));
    }
    assert!(dom.contains(report["rules"]["sha256"].as_str().expect("rules")));
}

#[test]
fn the_browser_shows_every_host_and_count_of_the_json_report() {
    let Some(browser) = chromium() else {
        eprintln!("skipped: chromium is not installed (Debian package chromium)");
        return;
    };
    let run = replay_staged_enterprise();
    let dom = dump(browser, &run.dir, &run.html);
    check_page(&dom, &run.report);
    // The script ran (the page's CSP allows it by hash): it added the filter box.
    assert!(
        dom.contains("id=\"hosts-filter\""),
        "the script did not run"
    );

    // Scripts blocked: the same rows and counts, no filter box.
    let page = std::fs::read_to_string(&run.html).expect("html");
    let csp_start = page.find("script-src 'sha256-").expect("csp");
    let csp_end = csp_start + page[csp_start..].find(';').expect("csp end");
    let blocked = format!(
        "{}script-src 'none'{}",
        &page[..csp_start],
        &page[csp_end..]
    );
    let no_js = run.dir.join("no-js.html");
    std::fs::write(&no_js, blocked).expect("write");
    let dom = dump(browser, &run.dir, &no_js);
    check_page(&dom, &run.report);
    assert!(!dom.contains("id=\"hosts-filter\""), "a blocked script ran");

    // A screenshot as an artifact of the test run.
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("html_report.png");
    let _ = std::fs::remove_file(&shot);
    browse(
        browser,
        &run.dir,
        &run.html,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2400".to_string(),
        ],
    );
    let png = std::fs::read(&shot).expect("screenshot");
    assert!(png.len() > 10_000, "screenshot of {} bytes", png.len());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    eprintln!("screenshot: {}", shot.display());
}

/// Nothing in the page can make the browser fetch: no `src` at all, every link stays in the
/// page, no `http:`/`https:` inside any tag, a CSP of `default-src 'none'`; and the same run
/// writes the same bytes.
#[test]
fn the_page_fetches_nothing_and_is_deterministic() {
    let run = replay_staged_enterprise();
    let page = std::fs::read_to_string(&run.html).expect("html");
    assert!(page.contains("content=\"default-src 'none';"));
    for tag in page
        .split('<')
        .skip(1)
        .map(|t| t.split('>').next().unwrap_or(""))
    {
        let lower = tag.to_ascii_lowercase();
        assert!(!lower.contains("src="), "<{tag}>");
        assert!(
            !lower.contains("http:") && !lower.contains("https:"),
            "<{tag}>"
        );
        if let Some((_, v)) = lower.split_once("href=\"") {
            assert!(v.starts_with('#'), "<{tag}>");
        }
        assert!(
            !lower.starts_with("link") && !lower.starts_with("iframe") && !lower.starts_with("img"),
            "<{tag}>"
        );
    }
    assert_eq!(page.matches("<script>").count(), 1);
    assert!(page.contains("@media print"));
    let again = replay_staged_enterprise();
    assert_eq!(std::fs::read(&again.html).expect("html"), page.into_bytes());
}

/// Names are hostile: a report whose name, asset label and input name carry markup and
/// quotes renders them as text in the browser, and no script of theirs exists in the DOM.
#[test]
fn hostile_names_are_shown_as_text() {
    let Some(browser) = chromium() else {
        eprintln!("skipped: chromium is not installed (Debian package chromium)");
        return;
    };
    let run = replay_staged_enterprise();
    let evil = "<script>document.title='pwned'</script>\"'><b id=x>";
    let mut report = run.report.clone();
    report["hosts"][0]["asset"] = serde_json::json!({"label": evil, "role": "endpoint"});
    report["hosts"][0]["evidence"][0]["name"] = Value::String(evil.to_string());
    report["inputs"][0]["name"] = Value::String(evil.to_string());
    let saved = run.dir.join("hostile.json");
    std::fs::write(&saved, serde_json::to_vec_pretty(&report).expect("json")).expect("write");
    let page = run.dir.join("hostile.html");
    let o = ksensor()
        .args(["report", "render"])
        .arg(&saved)
        .arg("--report-html")
        .arg(&page)
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dom = dump(browser, &run.dir, &page);
    assert!(!dom.contains("pwned</title>") && dom.contains("<title>ksensor audit report</title>"));
    assert!(!dom.contains("<b id=\"x\">"));
    assert_eq!(dom.matches("<script>").count(), 1);
    let rows = host_rows(&dom);
    let asset = rows[0]
        .iter()
        .find(|(c, _)| c == "asset")
        .expect("asset cell");
    assert_eq!(asset.1, evil);
}
