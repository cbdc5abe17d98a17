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

/// A stream keeps its records whoever reads it (`tools/fidelity/dynamodb_streams.py`): with
/// an event source mapping on the table (disabled, its function served by nobody), every
/// write is still in the stream, in order, with growing sequence numbers. moto invoked the
/// mapping's function on each write and emptied the shard once it answered.
#[tokio::test]
async fn a_stream_keeps_every_record_with_a_mapping_on_the_table() {
    let emu = Emulator::shared();
    let b = emu.clients(SECONDARY).await;
    let name = unique_name("fidelity-stream");
    let config = failover_core::clients::sdk_config(
        &failover_core::Region::new(SECONDARY).unwrap(),
        failover_core::clients::ClientTimeouts::default(),
    )
    .await;
    let outputs = failover_testkit::fixtures::stack::deploy(
        &aws_sdk_cloudformation::Client::new(&config),
        &name,
        &crate::region_switch::replicator_template(&format!("{name}-fn"), &format!("{name}-data"), false),
    )
    .await;
    for i in 0..5 {
        b.dynamodb
            .put_item()
            .table_name(format!("{name}-data"))
            .item("pk", AttributeValue::S(format!("order-{i}")))
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutItem order-{i}: {e:?}"));
    }
    let read = failover_testkit::fixtures::stream_event::read_stream_as_lambda_event(
        &emu.streams(SECONDARY).await,
        &outputs["StreamArn"],
    )
    .await;
    let records = &read.event.records;
    let keys: Vec<String> = records
        .iter()
        .map(|r| format!("{:?}", r.change.keys.get("pk")))
        .collect();
    assert_eq!(records.len(), 5, "{keys:?}");
    let sequences: Vec<u128> = records
        .iter()
        .map(|r| r.change.sequence_number.as_deref().unwrap().parse().unwrap())
        .collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
}
