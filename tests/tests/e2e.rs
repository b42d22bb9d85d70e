//! The shared end-to-end suite: every scenario against devp2p-tokio and against devp2p-mio,
//! real sockets on 127.0.0.1 only.

#[path = "../harness/e2e/mod.rs"]
mod e2e;

use e2e::{scenarios, MioHarness, TokioHarness};

macro_rules! both_drivers {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                use super::*;

                #[test]
                fn tokio() {
                    scenarios::$scenario(&mut TokioHarness::new());
                }

                #[test]
                fn mio() {
                    scenarios::$scenario(&mut MioHarness::new());
                }
            }
        )*
    };
}

both_drivers!(
    two_nodes_exchange_messages_on_a_test_subprotocol,
    eight_nodes_bootstrap_from_one_and_find_each_other,
    shutdown_is_clean_on_both_sides_with_reasons,
    restart_seeds_from_the_saved_database,
    messages_around_every_size_limit_arrive_or_are_refused_at_once,
);
