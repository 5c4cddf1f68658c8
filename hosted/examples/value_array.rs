//! Retells the Python lesson on `multiprocessing.Value` and `Array`: a parent and its
//! forked children share a balance, a list of prices and a byte string. Where Python's
//! `money.value += 1` from two processes loses updates, `update` and `fetch_add` lose
//! none; an index past the end is an error, not a write into a neighbour.
//!
//!     cargo run -p shmsync --example value_array

use shmsync::{shm_struct, Array, Process, Shared, Value};
use std::error::Error;

shm_struct! {
    struct Bank {
        money: Value<i32>,            // Value('i', 5000)
        prices: Array<i32, 5>,        // Array('i', [1, 2, 3, 4, 5])
        motto: Array<u8, 32>,         // Array('c', b'...')
    }
}

/// Public so that the tour can run this lesson among the others.
pub fn main() -> Result<(), Box<dyn Error>> {
    let bank = Shared::anonymous(Bank {
        money: Value::new(5000),
        prices: Array::new([1, 2, 3, 4, 5]),
        motto: Array::zeroed(),
    })?;
    bank.motto.set_value(b"shared memory")?;
    println!(
        "parent: money = {}, prices = {:?}",
        bank.money.get(),
        bank.prices.snapshot()
    );

    let saver = Process::spawn_named("saver", || {
        for _ in 0..10_000 {
            bank.money
                .update(|m| m + 1)
                .expect("nobody died holding the lock");
        }
    })?;
    let spender = Process::spawn_named("spender", || {
        for _ in 0..10_000 {
            bank.money.fetch_sub(1);
        }
    })?;
    let doubler = Process::spawn_named("doubler", || {
        // Holding the array's lock across the loop: no other process sees half the
        // prices doubled.
        let mut prices = bank.prices.lock().unwrap();
        for i in 0..prices.snapshot().len() {
            let price = prices.get(i).unwrap();
            prices.set(i, price * 2).unwrap();
        }
        bank.motto.set_value(b"changed by a child").unwrap();
    })?;
    for child in [saver, spender, doubler] {
        let name = child.name().to_owned();
        println!("{name} {}", child.join()?);
    }
    println!(
        "parent: money = {} (10,000 deposits and 10,000 withdrawals, none lost)",
        bank.money.get()
    );
    println!("parent: prices = {:?}", bank.prices.snapshot()?);
    println!(
        "parent: motto = {:?}",
        String::from_utf8_lossy(&bank.motto.value()?)
    );
    match bank.prices.get(5) {
        Err(error) => println!("parent: prices[5] -> error: {error}"),
        Ok(price) => println!("parent: prices[5] = {price}?!"),
    }
    Ok(())
}
