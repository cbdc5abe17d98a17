//! The emulator's DynamoDB refuses an index key of the wrong type as AWS does
//! (`tools/fidelity/dynamodb_index_keys.py`): PutItem fails with ValidationException "Type
//! mismatch for Index Key", and a BatchWriteItem holding such an item is refused as a
//! whole, nothing of it written. The replicator's poison isolation depends on it.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, PutRequest, ScalarAttributeType, WriteRequest,
};
use failover_testkit::{unique_name, Emulator, SECONDARY};
use std::collections::HashMap;

fn order(pk: &str, status: AttributeValue) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_string(), AttributeValue::S(pk.into())),
        ("status".to_string(), status),
    ])
}

#[tokio::test]
async fn an_index_key_of_the_wrong_type_refuses_the_put_and_the_whole_batch() {
    let clients = Emulator::shared().clients(SECONDARY).await;
    let ddb = &clients.dynamodb;
    let name = unique_name("fidelity-index-keys");
    let attribute = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |n: &str| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(KeyType::Hash)
            .build()
            .unwrap()
    };
    ddb.create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("status"))
        .key_schema(key("pk"))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by-status")
                .key_schema(key("status"))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
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
        .set_item(Some(HashMap::from([("pk".to_string(), AttributeValue::S("E".into()))])))
        .send()
        .await
        .unwrap();
}
