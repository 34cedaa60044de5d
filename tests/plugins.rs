//! Loading plugins: the example works; each kind of bad library is one clear sentence; a bare
//! plugin name is found beside the executable (also through a symlink to it) or in
//! $SHIFTBENCH_PLUGIN_PATH.

mod common;

use common::plugin_lib;
use shiftbench::host::plugin::load_library;
use shiftbench::host::ModelStopped;
use shiftbench::host::{LoadedModel, Scorer};

#[test]
fn example_plugin_loads_with_a_valid_card() {
    let lib = plugin_lib("shiftbench_example");
    let mut m = LoadedModel::load(&lib, None, 0).unwrap();
    assert_eq!(m.card().name.as_str(), "example-shape-colour");
    assert_eq!(m.labels().len(), 10);
    assert!(m.plugin_name().starts_with("shiftbench-example-plugin "));
    let n = m.card().preprocess.image_len();
    // A blank batch of 3 gives 3 x 10 finite scores.
    let scores = m.infer(&vec![0.5; 3 * n], 3).unwrap();
    assert_eq!(scores.len(), 30);
    // The wrong amount of input is caught before the plugin sees it.
    assert!(m.infer(&vec![0.5; n], 2).is_err());
}

#[test]
fn incompatible_interface_names_both_versions() {
    let lib = plugin_lib("shiftbench_incompatible");
    let e = load_library(&lib).err().expect("must be refused").to_string();
    assert!(e.contains("was built against shiftbench-plugin interface 1.0.0"), "{e}");
    assert!(e.contains(&format!("this shiftbench speaks interface {}", shiftbench_plugin::INTERFACE_VERSION)), "{e}");
    assert!(e.contains("rebuild the plugin"), "{e}");
    assert!(!e.contains('\n'), "one sentence: {e}");
}

#[test]
fn a_library_that_is_not_a_plugin() {
    let lib = plugin_lib("shiftbench_not_a_plugin");
    let e = load_library(&lib).err().unwrap().to_string();
    assert!(e.contains("is a shared library but not a shiftbench plugin"), "{e}");
}

#[test]
fn missing_and_garbage_files() {
    let e = LoadedModel::open("/no/such/libplugin.so", 0).err().unwrap().to_string();
    assert_eq!(e, "plugin library /no/such/libplugin.so does not exist");
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("libgarbage.so");
    std::fs::write(&f, vec![0x7f, b'E', b'L', b'F', 0, 0, 0]).unwrap();
    let e = load_library(&f).err().unwrap().to_string();
    assert!(e.contains("is not a loadable shared library"), "{e}");
}

#[test]
fn model_yaml_names_the_plugin() {
    let d = tempfile::tempdir().unwrap();
    let lib = plugin_lib("shiftbench_example");
    let y = d.path().join("m.yaml");
    std::fs::write(&y, format!("plugin: {}\n", lib.display())).unwrap();
    let m = LoadedModel::open(y.to_str().unwrap(), 0).unwrap();
    assert_eq!(m.config.as_deref(), Some(y.as_path()));
    std::fs::write(&y, "plugin: example\nbatch: many\n").unwrap();
    let e = LoadedModel::open(y.to_str().unwrap(), 0).err().unwrap().to_string();
    assert!(e.contains("m.yaml:2:"), "{e}");
}

#[test]
fn a_plugin_of_interface_0_1_0_still_loads_and_its_errors_keep_their_old_meaning() {
    // Built as plugins were before the typed error kind: its root module has no `load_typed`.
    let lib = plugin_lib("shiftbench_legacy");
    let mut m = LoadedModel::load(&lib, None, 0).unwrap();
    let n = m.card().preprocess.image_len();
    assert_eq!(m.infer(&vec![0.5; n], 1).unwrap().len(), 10);
    // An ordinary error fails the batch; the model goes on.
    let e = m.infer(&vec![0.5; 2 * n], 2).unwrap_err();
    assert!(!e.is::<ModelStopped>() && format!("{e:#}").contains("bad batch of 2"), "{e:#}");
    assert_eq!(m.infer(&vec![0.5; n], 1).unwrap().len(), 10);
    // A panic stops it, and so does every call after it.
    let e = m.infer(&vec![0.5; 3 * n], 3).unwrap_err();
    assert!(e.is::<ModelStopped>() && format!("{e:#}").contains("panicking on a batch of 3"), "{e:#}");
    assert!(m.infer(&vec![0.5; n], 1).unwrap_err().is::<ModelStopped>());
}

#[test]
fn an_error_that_reads_like_a_panic_does_not_stop_a_plugin_with_typed_errors() {
    let d = tempfile::tempdir().unwrap();
    let y = d.path().join("m.yaml");
    let lib = plugin_lib("shiftbench_misbehave");
    std::fs::write(
        &y,
        format!(
            "plugin: {}\nname: looks-fatal\npreprocess: {{resize: 32, crop: 32}}\noptions: {{behave: looks-fatal}}\n",
            lib.display()
        ),
    )
    .unwrap();
    let mut m = LoadedModel::load(&lib, Some(&y), 0).unwrap();
    let n = m.card().preprocess.image_len();
    for _ in 0..2 {
        let e = m.infer(&vec![0.5; n], 1).unwrap_err();
        assert!(!e.is::<ModelStopped>(), "an ordinary error must not stop the model: {e:#}");
        assert!(format!("{e:#}").contains("plugin panicked: no, this is only an error message"), "{e:#}");
    }
}

#[test]
fn a_plugin_of_interface_0_1_1_still_loads_and_runs_without_an_embedding() {
    use shiftbench::host::scorer::Output;
    // Built as plugins were before embeddings: its root module has `load_typed` but no `load_embed`.
    let lib = plugin_lib("shiftbench_v0_1_1");
    let module = load_library(&lib).unwrap();
    assert!(module.load_typed().is_some() && module.load_embed().is_none());
    let mut m = LoadedModel::load(&lib, None, 0).unwrap();
    assert_eq!(m.card().name.as_str(), "interface-0.1.1");
    let n = m.card().preprocess.image_len();
    assert_eq!(m.infer(&vec![0.5; 3 * n], 3).unwrap().len(), 30);
    // Typed errors: an ordinary error fails the batch, the model goes on.
    let e = m.infer(&vec![0.5; 2 * n], 2).unwrap_err();
    assert!(!e.is::<ModelStopped>() && format!("{e:#}").contains("bad batch of 2"), "{e:#}");
    // No embedding: asking for one is a clear error, and scoring goes on as before.
    assert_eq!(m.embedding_len(), 0);
    let e = m.set_output(Output::Embedding).unwrap_err().to_string();
    assert!(e.starts_with("model interface-0.1.1 (shiftbench-test-v0-1-1 0.1.0) has no embedding"), "{e}");
    assert_eq!(m.infer(&vec![0.5; n], 1).unwrap().len(), 10);
}

#[test]
fn a_plugin_of_interface_0_1_2_still_loads_and_embeds_without_a_text_encoder() {
    use shiftbench::host::scorer::Output;
    // Built as plugins were before text encoders: `load_embed` is its last field.
    let lib = plugin_lib("shiftbench_v0_1_2");
    let module = load_library(&lib).unwrap();
    assert!(module.load_embed().is_some() && module.load_text_encoder().is_none());
    let mut m = LoadedModel::load(&lib, None, 0).unwrap();
    assert_eq!(m.card().name.as_str(), "interface-0.1.2");
    let n = m.card().preprocess.image_len();
    assert_eq!(m.infer(&vec![0.5; 3 * n], 3).unwrap().len(), 30);
    assert_eq!(m.embedding_len(), 2);
    m.set_output(Output::Embedding).unwrap();
    assert_eq!(m.infer(&vec![0.5; 2 * n], 2).unwrap(), vec![0.5, 1.0, 0.5, 1.0]);
}

#[test]
fn the_example_plugin_embeds_in_process_and_in_a_worker() {
    use shiftbench::host::scorer::Output;
    use shiftbench::host::worker::{WorkerModel, WorkerOptions};
    let lib = plugin_lib("shiftbench_example");
    let mut m = LoadedModel::load(&lib, None, 0).unwrap();
    assert_eq!(m.embedding_len(), 7);
    let n = m.card().preprocess.image_len();
    // A grey image with a brighter square in the middle: something stands out.
    let side = m.card().preprocess.crop as usize;
    let mut img = vec![0.3f32; n];
    for y in side / 4..3 * side / 4 {
        for x in side / 4..3 * side / 4 {
            for c in 0..3 {
                img[(y * side + x) * 3 + c] = 0.9;
            }
        }
    }
    let batch: Vec<f32> = img.iter().chain(&vec![0.5; n]).copied().collect();
    m.set_output(Output::Embedding).unwrap();
    let here = m.infer(&batch, 2).unwrap();
    assert_eq!(here.len(), 14);
    assert!(here[..7].iter().any(|&v| v != 0.0) && here[7..].iter().all(|&v| v == 0.0), "{here:?}");
    m.set_output(Output::Scores).unwrap();
    assert_eq!(m.infer(&batch, 2).unwrap().len(), 20);

    let opts = WorkerOptions { exe: common::shiftbench_bin(), ..WorkerOptions::current_exe().unwrap() };
    let mut w = WorkerModel::spawn_many(&opts, &lib, None, 1, 1).unwrap().pop().unwrap();
    assert_eq!(w.embedding_len(), 7);
    assert_eq!(w.infer(&batch, 2).unwrap().len(), 20);
    w.set_output(Output::Embedding).unwrap();
    assert_eq!(w.infer(&batch, 2).unwrap(), here, "the worker embeds as the plugin does in process");
    w.set_output(Output::Scores).unwrap();
    assert_eq!(w.infer(&batch, 2).unwrap().len(), 20);
}

/// The README's ways to have `shiftbench` on PATH: a symlink to the built executable finds the
/// plugins beside the file it points to; a lone copy of it (what `cargo install` makes) finds them
/// only through $SHIFTBENCH_PLUGIN_PATH, and its error says so.
#[test]
fn plugins_are_found_beside_the_executable_a_symlink_points_to() {
    let lib = plugin_lib("shiftbench_example");
    let bin = common::shiftbench_bin();
    let d = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (link, copy) = (d.path().join("link/shiftbench"), d.path().join("copy/shiftbench"));
    for p in [&link, &copy] {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    }
    std::os::unix::fs::symlink(&bin, &link).unwrap();
    if std::fs::hard_link(&bin, &copy).is_err() {
        std::fs::copy(&bin, &copy).unwrap();
    }
    let show = |exe: &std::path::Path, plugin_path: Option<&std::path::Path>| {
        let mut c = std::process::Command::new(exe);
        c.args(["model", "show", "example"]).current_dir(d.path()).env_remove("SHIFTBENCH_PLUGIN_PATH");
        if let Some(p) = plugin_path {
            c.env("SHIFTBENCH_PLUGIN_PATH", p);
        }
        let o = c.output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let found = |out: &str| {
        let line = out.lines().find(|l| l.starts_with("plugin: shiftbench-example-plugin ")).unwrap_or_default();
        line.ends_with(&format!(" ({})", lib.display()))
    };
    let (code, out, err) = show(&link, None);
    assert!(code == Some(0) && found(&out), "{out}{err}");
    let (code, _, err) = show(&copy, None);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no plugin named \"example\"") && err.contains("set SHIFTBENCH_PLUGIN_PATH"), "{err}");
    let (code, out, err) = show(&copy, lib.parent());
    assert!(code == Some(0) && found(&out), "{out}{err}");
}
