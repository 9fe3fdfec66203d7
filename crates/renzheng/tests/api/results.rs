//! Every result code 1–8, both encodings, both base64 forms, and the audit trail.

use serde_json::json;

use crate::helpers::*;

fn assert_common(data: &serde_json::Value, person: Person) {
    let id = person.id();
    assert_eq!(data["birthday"], id[6..14]);
    let sex_digit = id.as_bytes()[16] - b'0';
    assert_eq!(data["sex"], if sex_digit % 2 == 1 { "男" } else { "女" });
    assert!(!data["address"].as_str().unwrap().is_empty());
}

fn assert_scored(data: &serde_json::Value) -> (f64, f64, f64) {
    let score = data["score"].as_f64().expect("score for results 1-3");
    let same = data["thresholds"]["same"].as_f64().unwrap();
    let different = data["thresholds"]["different"].as_f64().unwrap();
    assert!(same > different);
    assert_eq!(data["faces"], 1);
    assert_eq!(data["quality"]["passed"], true);
    (score, same, different)
}

#[tokio::test]
async fn result_1_same_person() {
    let app = spawn_app().await;
    let data = app.check_result(HU, HU_SAME).await;
    assert_eq!(data["result"], 1, "{data}");
    assert_eq!(data["desc"], "身份证号与姓名匹配,照片系统判断为同一人");
    let (score, same, _) = assert_scored(&data);
    assert!(score >= same);
    assert_common(&data, HU);
    assert_eq!(data["address"], "北京市朝阳区");
}

#[tokio::test]
async fn result_2_cannot_tell() {
    let app = spawn_app().await;
    let data = app.check_result(JIANG, JIANG_OTHER).await;
    assert_eq!(data["result"], 2, "{data}");
    assert_eq!(data["desc"], "身份证号与姓名匹配,照片不能确定是否为同一人");
    let (score, same, different) = assert_scored(&data);
    assert!(score < same && score > different, "{data}");
}

#[tokio::test]
async fn result_3_different_people() {
    let app = spawn_app().await;
    let data = app.check_result(HU, JIANG_OTHER).await;
    assert_eq!(data["result"], 3, "{data}");
    assert_eq!(data["desc"], "身份证号与姓名匹配,照片系统判断为不同人");
    let (score, _, different) = assert_scored(&data);
    assert!(score <= different);
}

/// The `sface` pack's "different" band starts at cos 0.28 (`cal2`): an East-Asian
/// impostor at cos 0.27 to the portrait is called different (`cal1` said "can't tell").
#[tokio::test]
async fn an_east_asian_impostor_just_inside_the_different_band_gets_3() {
    let app = spawn_app().await;
    let data = app
        .check_result(HU, "lfw_eastasian_dev/Wen_Jiabao/Wen_Jiabao_0005.jpg")
        .await;
    assert_eq!(data["result"], 3, "{data}");
    let (score, _, different) = assert_scored(&data);
    assert!(score <= different, "{data}");
}

/// A three-quarter view of the holder is judged on the `sface` pack: the head's turn is
/// measured and reported, but it is not a warning there and does not hold the answer
/// back at 2 (`docs/calibration.md`, "No pose cap").
#[tokio::test]
async fn a_turned_head_of_the_holder_gets_1_on_the_sface_pack() {
    let app = spawn_app().await;
    let data = app
        .check_result(JIANG, "lfw_eastasian_dev/Jiang_Zemin/Jiang_Zemin_0007.jpg")
        .await;
    assert_eq!(data["result"], 1, "{data}");
    assert!(data["quality"]["yaw"].as_f64().unwrap() > 0.75, "{data}");
    assert_eq!(data["quality"]["warnings"], json!([]), "{data}");
    let (score, same, _) = assert_scored(&data);
    assert!(score >= same, "{data}");
}

#[tokio::test]
async fn result_4_name_mismatch() {
    let app = spawn_app().await;
    let response = app
        .check_json(&json!({"name": JIANG.name, "idCard": HU.id(), "image": photo_b64(HU_SAME)}))
        .await;
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["result"], 4);
    assert_eq!(body["data"]["desc"], "身份证号与姓名不匹配");
    assert!(body["data"]["score"].is_null());
}

#[tokio::test]
async fn result_5_no_portrait_on_record() {
    let app = spawn_app().await;
    let data = app.check_result(NO_PHOTO, HU_SAME).await;
    assert_eq!(data["result"], 5);
    assert_eq!(data["desc"], "身份证号与姓名匹配,库中无照片");
    assert_common(&data, NO_PHOTO);
}

#[tokio::test]
async fn result_6_no_face() {
    let app = spawn_app().await;
    let data = app.check_result(HU, NO_FACE).await;
    assert_eq!(data["result"], 6, "{data}");
    assert_eq!(data["desc"], "身份证号与姓名匹配,照片检测失败");
    assert_eq!(data["faces"], 0);
    assert!(data["score"].is_null());
}

#[tokio::test]
async fn result_7_unknown_id() {
    let app = spawn_app().await;
    let data = app.check_result(UNKNOWN, HU_SAME).await;
    assert_eq!(data["result"], 7);
    assert_eq!(data["desc"], "库中无此号");
    assert_common(&data, UNKNOWN);
}

#[tokio::test]
async fn result_8_poor_quality_with_reasons() {
    let app = spawn_app().await;
    let data = app.check_result(HU, TOO_DARK).await;
    assert_eq!(data["result"], 8, "{data}");
    assert_eq!(data["desc"], "照片质量不合格");
    assert_eq!(data["quality"]["passed"], false);
    assert!(
        data["quality"]["issues"]
            .as_array()
            .unwrap()
            .contains(&json!("too_dark")),
        "{data}"
    );
    assert!(!data["quality"]["reasons"].as_array().unwrap().is_empty());
    assert!(data["score"].is_null());
}

#[tokio::test]
async fn form_encoding_and_data_uri_work() {
    let app = spawn_app().await;
    let id = HU.id();
    let uri = format!("data:image/jpeg;base64,{}", photo_b64(HU_SAME));
    let response = app
        .check_form(&[
            ("name", HU.name),
            ("idCard", id.as_str()),
            ("image", uri.as_str()),
        ])
        .await;
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["result"], 1);

    // A form body whose '+' signs were not escaped (they arrive as spaces).
    let raw = format!(
        "name={}&idCard={id}&image={}",
        url_encode(&[("x", HU.name)]).trim_start_matches("x="),
        photo_b64(HU_SAME).replace('/', "%2F").replace('=', "%3D")
    );
    let response = app
        .request(reqwest::Method::POST, "/faceidcard/check")
        .header("Authorization", format!("APPCODE {}", app.app_code))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(raw)
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["result"], 1);
}

#[tokio::test]
async fn legacy_15_digit_and_lowercase_x_are_accepted() {
    let app = spawn_app().await;
    // HU's number is 18 digits; a lower-case check character must be accepted too.
    let id = HU.id().to_lowercase();
    let response = app
        .check_json(&json!({"name": HU.name, "idCard": id, "image": photo_b64(HU_SAME)}))
        .await;
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["result"], 1);
    // The 15-digit form of HU's number (born 19xx, no check character) finds HU too.
    let legacy = format!("{}{}", &HU.id17[..6], &HU.id17[8..17]);
    let response = app
        .check_json(&json!({"name": HU.name, "idCard": legacy, "image": photo_b64(HU_SAME)}))
        .await;
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["result"], 1);
}

#[tokio::test]
async fn image_wins_over_img_url() {
    let app = spawn_app().await;
    // The URL is unreachable; the inline image is used and the URL never fetched.
    let response = app
        .check_json(&json!({"name": HU.name, "idCard": HU.id(), "image": photo_b64(HU_SAME), "imgUrl": "http://10.0.0.1/x.jpg"}))
        .await;
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["result"], 1);
}

#[tokio::test]
async fn every_check_is_audited_without_clear_pii() {
    let app = spawn_app().await;
    let ok = app
        .check_json(&json!({"name": HU.name, "idCard": HU.id(), "image": photo_b64(HU_SAME)}))
        .await;
    let ok_id = ok.headers()["x-ca-request-id"].to_str().unwrap().to_owned();
    let bad = app
        .check_json(&json!({"name": HU.name, "idCard": "110105194212210010"}))
        .await;
    let bad_id = bad.headers()["x-ca-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let denied = app
        .request(reqwest::Method::POST, "/faceidcard/check")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let denied_id = denied.headers()["x-ca-request-id"]
        .to_str()
        .unwrap()
        .to_owned();

    let rows = app.store.recent_audit(10).await.unwrap();
    let row = |id: &str| {
        rows.iter()
            .find(|r| r.request_id == id)
            .unwrap_or_else(|| panic!("no audit row for {id}"))
    };
    let ok_row = row(&ok_id);
    assert_eq!(ok_row.result, Some(1));
    assert_eq!(ok_row.http_status, 200);
    assert!(ok_row.score.unwrap() > 0.5);
    assert!(ok_row.app_id.is_some());
    assert_eq!(
        ok_row.id_masked.as_deref().unwrap(),
        format!("{}**************{}", &HU.id()[..2], &HU.id()[16..])
    );
    assert!(ok_row.id_hash.as_deref().unwrap().len() == 64);
    assert!(!ok_row.name_masked.as_deref().unwrap().contains("锦涛"));
    let bad_row = row(&bad_id);
    assert_eq!(bad_row.http_status, 400);
    assert_eq!(bad_row.error_code.as_deref(), Some("InvalidIdCard"));
    assert_eq!(bad_row.result, None);
    // Refused credentials are counted in the metrics, never audited.
    assert!(rows.iter().all(|r| r.request_id != denied_id));
    assert!(rows.iter().all(|r| r.app_id.is_some()));
    let metrics = app
        .request(reqwest::Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "renzheng_auth_failures_total 1"),
        "{metrics}"
    );
    for r in &rows {
        for p in ALL_PEOPLE {
            let dump = format!("{r:?}");
            assert!(
                !dump.contains(&p.id()) && !dump.contains(p.name),
                "clear PII in audit: {dump}"
            );
        }
    }
}
