//! fleets::JsonObject::parse / parse_opt: the check every *_json argument goes through
//! before a request is built. Accepted text must be a JSON object that serde_json parses,
//! nested at most fleets::MAX_JSON_DEPTH levels, and must be borrowed unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match fleets::JsonObject::parse("fuzz_json", text) {
        Ok(obj) => {
            let s = obj.as_str();
            assert!(s.starts_with('{'), "accepted a non-object: {s:?}");
            // Accepted text parses as an object; serde_json's Value only refuses numbers that
            // overflow f64 (1e400), which are still valid JSON text. Lone surrogate escapes
            // ("\ud800") are refused by JsonObject::parse.
            match serde_json::from_str::<serde_json::Value>(s) {
                Ok(v) => assert!(v.is_object()),
                Err(e) => assert!(
                    e.to_string().contains("number out of range"),
                    "accepted {s:?}: {e}"
                ),
            }
            // serde serialisation of the object embeds it verbatim.
            let wrapped = serde_json::to_string(&obj).expect("serialises");
            assert_eq!(wrapped, s);
        }
        Err(e) => {
            assert_eq!(e.code(), fleets::ErrorCode::InvalidJson, "{}", e.message());
            assert!(!e.message().is_empty());
            // A document serde_json accepts as an object must not be rejected, unless it
            // nests deeper than the library's limit (serde_json's is higher).
            if let Ok(serde_json::Value::Object(_)) =
                serde_json::from_str::<serde_json::Value>(text)
            {
                assert!(
                    e.message().contains("nests deeper than"),
                    "rejected a valid object: {}",
                    e.message()
                );
            }
        }
    }
    let opt = fleets::JsonObject::parse_opt("fuzz_json", Some(text));
    assert_eq!(opt.is_ok(), fleets::JsonObject::parse("x", text).is_ok());
    assert!(matches!(fleets::JsonObject::parse_opt("x", None), Ok(None)));
});
