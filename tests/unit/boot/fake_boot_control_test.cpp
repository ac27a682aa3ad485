#include "tests/unit/boot/scenarios.hpp"
#include "tests/version_literal.hpp"

using namespace ballast;
using namespace ballast::boot;

namespace {
using namespace ballast::version_literals;

KernelSpec fake_spec(const std::string& v, int tries) { return KernelSpec{make_version(v), "/k/" + v, "/i/" + v, "", "", tries}; }

}  // namespace

// Runs every scenario on a fresh fake; `with_ukis`: even versions are UKIs.
static void run_fake_scenarios(bool with_ukis, const std::function<void(FakeBootControl&)>& after = {}) {
  testing::run_all_scenarios([&](const std::function<void(testing::Rig&)>& scenario) {
    FakeBootControl fake;
    testing::Rig rig{fake, [&fake]() -> Result<std::string> { return BALLAST_TRY(fake.simulate_reboot()).str(); },
                     [&](const std::string& v, int tries) {
                       KernelSpec k = fake_spec(v, tries);
                       if (with_ukis && std::stoi(v) % 2 == 0) k.uki_path = "/uki/" + v;
                       return k;
                     }};
    scenario(rig);
    if (after) after(fake);
  });
}

TEST_CASE("the fake boot control follows the boot-counting scenarios", "[boot][fake]") { run_fake_scenarios(false); }

TEST_CASE("the fake follows the boot-counting scenarios with UKIs among Type #1 entries", "[boot][fake][uki]") {
  run_fake_scenarios(true, [](FakeBootControl& fake) {
    auto all = fake.entries();
    REQUIRE(all);
    for (const auto& e : *all) CHECK(e.uki == (std::stoi(e.version.str()) % 2 == 0));
  });
}

TEST_CASE("the fake gives new entries the configured tries and refuses a full ESP", "[boot][fake]") {
  FakeBootControl fake(5);
  REQUIRE(fake.install(fake_spec("1", 0)));
  CHECK(fake.entries()->front().tries_left == 5);
  CHECK(fake.entries()->front().id == "ballast-1+5-0.conf");
  fake.set_esp_free(100);
  fake.set_file_size("/k/2", 80);
  fake.set_file_size("/i/2", 80);
  auto full = fake.install(fake_spec("2", 0));
  REQUIRE(!full);
  CHECK(full.error().code == "boot.esp-full");
  CHECK(fake.entries()->size() == 1);
}

TEST_CASE("the fake injects a failure once and refuses to remove the booted version", "[boot][fake]") {
  FakeBootControl fake;
  REQUIRE(fake.install(fake_spec("1", 0)));
  fake.fail_next(Error{"boot.write", "disk on fire", 0, {}});
  CHECK(fake.bless("1"_v).error().code == "boot.write");
  CHECK(fake.bless("1"_v));
  CHECK(*fake.simulate_reboot() == "1"_v);
  CHECK(fake.remove("1"_v).error().code == "boot.busy");
  CHECK(fake.booted_version().value() == "1"_v);
}
