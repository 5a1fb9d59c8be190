// Plan mode: a bench plan in, a results file of bench records out (edgelight/bench/bench_plan.schema.json and
// bench_record.schema.json), the way the demo apps answer a plan. Needs no Python: this is what runs on a phone.
#pragma once

#include <string>

namespace edgelight::bench {

// 0: every record ok or not runnable; 1: at least one record failed; 2: the plan itself is bad (one line on stderr).
int run_plan(const std::string& plan_path, const std::string& results_path);

}  // namespace edgelight::bench
