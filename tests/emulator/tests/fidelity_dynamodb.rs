//! The emulator's DynamoDB refuses an index key of the wrong type as AWS does
//! (`tools/fidelity/dynamodb_index_keys.py`): PutItem fails with ValidationException "Type
//! mismatch for Index Key", and a BatchWriteItem holding such an item is refused as a
//! whole, nothing of it written. The replicator's poison isolation depends on it.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use failover_testkit::fixtures::dynamodb;
use failover_testkit::{unique_name, Emulator, SECONDARY};
use std::collections::HashMap;

fn order(pk: &str, status: AttributeValue) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_string(), AttributeValue::S(pk.into())),
        ("sk".to_string(), AttributeValue::S("META".into())),
        ("status".to_string(), status),
    ])
}

#[tokio::test]
async fn an_index_key_of_the_wrong_type_refuses_the_put_and_the_whole_batch() {
    let clients = Emulator::shared().clients(SECONDARY).await;
    let ddb = &clients.dynamodb;
    let name = unique_name("fidelity-index-keys");
    dynamodb::create_table_with_string_index(&clients, &name, "status").await;
    let err = ddb
        .put_item()
        .table_name(&name)
        .set_item(Some(order("A", AttributeValue::N("1".into()))))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ValidationException"), "{err:?}");
    assert!(
        err.message()
            .unwrap_or("")
            .contains("Type mismatch for Index Key status"),
        "{err:?}"
    );

    let put = |item| {
        WriteRequest::builder()
            .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
            .build()
    };
    let err = ddb
        .batch_write_item()
        .request_items(
            &name,
            vec![
                put(order("B", AttributeValue::S("paid".into()))),
                put(order("C", AttributeValue::N("2".into()))),
                put(order("D", AttributeValue::S("paid".into()))),
            ],
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ValidationException"), "{err:?}");
    let scan = ddb.scan().table_name(&name).send().await.unwrap();
    assert_eq!(scan.count(), 0, "nothing of the refused batch was written");
    // Right types, or no index attribute at all, are written.
    ddb.put_item()
        .table_name(&name)
        .set_item(Some(HashMap::from([
            ("pk".to_string(), AttributeValue::S("E".into())),
            ("sk".to_string(), AttributeValue::S("META".into())),
        ])))
        .send()
        .await
        .unwrap();
}
