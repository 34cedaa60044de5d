//! `score` reproduces the LAIONet paper's published figure from its own per-image results.

mod common;

use std::collections::BTreeSet;

use shiftbench::data::classes::load_class_subset;
use shiftbench::data::table::column_names as stored_columns;
use shiftbench::results::metrics::{equal_recall, TopK};
use shiftbench::run::score::{stored_models, tally_stored, LabelSource};

fn check(results: &str) {
    let Some(data) = common::shared_data("paper_score") else { return };
    let paper = data.join("paper");
    let classes: BTreeSet<String> =
        load_class_subset(&paper.join("laionet_top50_label_dict_counts.tsv"), &[("in_imagenet1k".into(), "1".into())])
            .unwrap();
    assert_eq!(classes.len(), 977);
    let labels = paper.join("ilsvrc2012_val_labels.tsv");
    let src = LabelSource { labels: Some(&labels), id_column: None, label_id_column: "image", wnid_column: "wnid" };
    let models = vec!["vit-base-patch16-224".to_string()];
    let t = tally_stored(&paper.join(results), &models, &src, Some(&classes)).unwrap();
    let tally = &t["vit-base-patch16-224"];
    assert_eq!(tally.counts.len(), 977);
    let top1 = equal_recall(&tally.counts, TopK::Top1).unwrap();
    let top5 = equal_recall(&tally.counts, TopK::Top5).unwrap();
    assert_eq!(format!("{:.6}", top1.value), "0.804246");
    assert_eq!(format!("{:.6}", top1.se), "0.001677");
    assert_eq!(format!("{:.6}", top5.value), "0.954795");
}

#[test]
fn vit_base_on_977_classes_from_parquet() {
    check("ILSVRC2012_val.parquet");
}

#[test]
fn the_tsv_copy_gives_the_same() {
    check("ilsvrc2012_val_topk_correct_30models_from_paper.tsv");
}

#[test]
fn all_thirty_models_are_found() {
    let Some(data) = common::shared_data("paper_score") else { return };
    let cols = stored_columns(&data.join("paper/ILSVRC2012_val.parquet")).unwrap();
    assert_eq!(stored_models(&cols).len(), 30);
}
