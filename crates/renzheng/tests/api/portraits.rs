//! Portrait formats the registry takes: ID-card chip portraits (102×126 JPEG, the format
//! the resident ID card's chip holds and authority sources hand out).

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

/// An ID-card chip portrait made from an ordinary photo: the head framed as on the card
/// (face centred a little above the middle, about 60 % of the height), 102×126 pixels,
/// JPEG at quality 70, as the chip stores it.
fn chip_portrait(rel: &str) -> Vec<u8> {
    let photo = image::load_from_memory(&photo(rel)).unwrap();
    // The shared LFW photos are 250×250 with the face centred at about (125, 120).
    let framed = photo.crop_imm(52, 39, 146, 180).resize_exact(
        102,
        126,
        image::imageops::FilterType::CatmullRom,
    );
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 70)
        .encode_image(&framed.to_rgb8())
        .unwrap();
    out
}

#[tokio::test]
async fn an_id_card_chip_portrait_is_enrolled_and_its_holders_photo_answers_1() {
    let app = spawn_app().await;
    let chip = chip_portrait(WEN_PORTRAIT);
    assert_eq!(
        image::load_from_memory(&chip)
            .unwrap()
            .to_rgb8()
            .dimensions(),
        (102, 126)
    );
    let holder = Person {
        name: "温家宝",
        id17: "11010519420915001",
        portrait: None,
    };
    let b64 = |bytes: &[u8]| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    let response = app
        .admin(Method::POST, "/admin/persons")
        .json(&json!({"name": holder.name, "idCard": holder.id(), "photos": [b64(&chip)]}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 201, "the chip portrait is enrolled: {body}");

    // The holder's ordinary photo answers 1; another person's answers 3.
    let same = app.check_result(holder, WEN_SAME).await;
    assert_eq!(same["result"], 1, "{same}");
    let other = app.check_result(holder, HU_SAME).await;
    assert_eq!(other["result"], 3, "{other}");
}
