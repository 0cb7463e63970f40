//! Time to render the HTML report of one check (`--html`, and every report the web page
//! shows): the Gmail bad-credentials scenario, played once by the replay server, then
//! rendered repeatedly. `cargo bench --bench html_report`.

use criterion::{criterion_group, criterion_main, Criterion};

fn report() -> smtprobe::Report {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let scenarios = smtprobe::app::demo::scenarios().expect("bundled scenarios");
    let s = scenarios
        .iter()
        .find(|s| s.name == "gmail-587-bad-credentials")
        .expect("scenario");
    rt.block_on(smtprobe::app::demo::run(s))
        .expect("demo")
        .report
}

fn bench(c: &mut Criterion) {
    let r = report();
    let meta = smtprobe::report::html::Meta {
        story: None,
        generated: Some("2026-12-01T00:00:00Z".into()),
    };
    c.bench_function("html_report gmail-587-bad-credentials", |b| {
        b.iter(|| smtprobe::report::html::report(std::hint::black_box(&r), &meta))
    });
    c.bench_function("html_report to_json (for comparison)", |b| {
        b.iter(|| std::hint::black_box(&r).to_json().to_string())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
