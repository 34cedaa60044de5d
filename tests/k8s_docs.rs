//! The Kubernetes example of docs/scale-out.md: its two Job documents parse and hold together (an
//! Indexed Job whose completion count is the N of `--shard ${JOB_COMPLETION_INDEX}/N`, retries per
//! index only with `restartPolicy: Never`, every `$(VAR)` defined, every mount a volume, the merge
//! reading the folder the shards write). The Kubernetes API's JSON schemas cannot check those
//! (`completionMode` is any string to them); where the PyPI package kubernetes-validate is
//! installed, the documents are also validated offline against its bundled schemas, strictly (no
//! unknown fields), for Kubernetes 1.29 (the first with `backoffLimitPerIndex` on by default) and
//! for its newest version. Without the package that half is skipped, also in CI.

mod common;

use serde::Deserialize;
use serde_yaml::Value;

fn jobs() -> (String, Vec<Value>) {
    let page = std::fs::read_to_string(common::repo().join("docs/scale-out.md")).unwrap();
    let blocks = common::fenced_blocks(&page, "yaml");
    assert_eq!(blocks.len(), 1, "docs/scale-out.md has one ```yaml block: the two Jobs");
    let docs: Vec<Value> =
        serde_yaml::Deserializer::from_str(&blocks[0]).map(Value::deserialize).collect::<Result<_, _>>().unwrap();
    (blocks[0].clone(), docs)
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v:?}"))
}

/// The `$(NAME)`s of a container's args (Kubernetes' own expansion from its `env`).
fn k8s_vars(text: &str) -> Vec<String> {
    text.split("$(").skip(1).filter_map(|t| t.split_once(')').map(|(v, _)| v.to_string())).collect()
}

#[test]
fn the_kubernetes_jobs_in_the_docs_are_indexed_shards_and_a_merge() {
    let (_, docs) = jobs();
    assert_eq!(docs.len(), 2, "the shards' Job, then the merge's");
    let page = std::fs::read_to_string(common::repo().join("docs/scale-out.md")).unwrap();
    let mut folders = Vec::new();
    for (doc, name) in docs.iter().zip(["shiftbench-nightly", "shiftbench-nightly-merge"]) {
        assert_eq!((s(&doc["apiVersion"]), s(&doc["kind"])), ("batch/v1", "Job"));
        assert_eq!(s(&doc["metadata"]["name"]), name);
        assert!(page.contains(&format!("job/{name}\n")), "the page waits for job/{name}");
        let pod = &doc["spec"]["template"]["spec"];
        assert_eq!(s(&pod["restartPolicy"]), "Never", "{name}");
        let volumes: Vec<&str> = pod["volumes"].as_sequence().unwrap().iter().map(|v| s(&v["name"])).collect();
        let containers = pod["containers"].as_sequence().unwrap();
        assert_eq!(containers.len(), 1, "{name}");
        let c = &containers[0];
        let command: Vec<&str> = c["command"].as_sequence().unwrap().iter().map(s).collect();
        assert_eq!(command, ["sh", "-c"], "{name}: a shell expands ${{JOB_COMPLETION_INDEX}}");
        let args: Vec<&str> = c["args"].as_sequence().unwrap().iter().map(s).collect();
        assert_eq!(args.len(), 1, "{name}: sh -c takes one script");
        let script = args[0];
        let env: Vec<(&str, &str)> = c["env"]
            .as_sequence()
            .map(|e| e.iter().map(|v| (s(&v["name"]), s(&v["value"]))).collect())
            .unwrap_or_default();
        for var in k8s_vars(script) {
            assert!(env.iter().any(|(n, _)| *n == var), "{name}: $({var}) is not in the container's env");
        }
        for m in c["volumeMounts"].as_sequence().unwrap() {
            assert!(volumes.contains(&s(&m["name"])), "{name}: mount {:?} has no volume", m["name"]);
        }
        assert!(script.starts_with("shiftbench "), "{name}: {script}");
        folders.push((script.to_string(), env.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>()));
    }

    let spec = &docs[0]["spec"];
    assert_eq!(s(&spec["completionMode"]), "Indexed", "JOB_COMPLETION_INDEX is set only for an Indexed Job");
    let n = spec["completions"].as_u64().unwrap();
    assert!(spec["parallelism"].as_u64().unwrap() <= n);
    assert!(spec["backoffLimitPerIndex"].as_u64().is_some());
    let (shards, merge) = (&folders[0].0, &folders[1].0);
    assert!(
        shards.contains(&format!("--shard ${{JOB_COMPLETION_INDEX}}/{n}")),
        "the shard count is the Job's completions ({n}): {shards}"
    );
    // The merge reads the folder the shards write, on the same claim.
    let out = shards.split("--out ").nth(1).unwrap().split_whitespace().next().unwrap();
    assert!(merge.starts_with(&format!("shiftbench merge {out} ")), "the shards write {out}: {merge}");
    assert_eq!(folders[0].1, folders[1].1, "both Jobs name the same night");
    let claim = |d: &Value| {
        d["spec"]["template"]["spec"]["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|v| s(&v["name"]) == "results")
            .map(|v| s(&v["persistentVolumeClaim"]["claimName"]).to_string())
    };
    assert_eq!(claim(&docs[0]), claim(&docs[1]));
    assert!(claim(&docs[0]).is_some());
}

#[test]
fn the_kubernetes_jobs_in_the_docs_validate_against_the_api_schemas() {
    let has = std::process::Command::new("python3")
        .args(["-c", "import kubernetes_validate"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !has {
        common::skipped(
            "k8s_docs schemas",
            "python3 cannot import kubernetes_validate \
             (python3 -m pip install -r tests/requirements.txt: the Kubernetes JSON schemas, offline)",
        );
        return;
    }
    let (yaml, _) = jobs();
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("jobs.yaml");
    std::fs::write(&f, yaml).unwrap();
    for version in [Some("1.29.0"), None] {
        let mut c = std::process::Command::new("python3");
        c.args(["-m", "kubernetes_validate", "--strict"]);
        if let Some(v) = version {
            c.args(["--kubernetes-version", v]);
        }
        let o = c.arg(&f).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(o.status.success(), "kubernetes-validate --strict ({version:?}):\n{text}");
        assert_eq!(text.matches(" passed for resource job/").count(), 2, "{text}");
        eprintln!("k8s_docs: {}", text.trim().replace('\n', "; "));
    }
}
