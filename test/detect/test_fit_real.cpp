// Suite 'real-dumps': the kernel banner and the model-fit check on real dumps of several builds,
// $DEEPMEM_DUMPS/builds/<name>/ for every name listed in builds/READY (tools/make-dataset --one per
// build). The banner read from the dump equals the guest's `uname -r` (meta.json "kernel_release")
// and names the package version; the shipped task_struct model ($DEEPMEM_MODELS, a 6.1 generic
// model) fits the 6.1 generic dump and does not fit the 6.1 PREEMPT_RT one (its layout moves: it
// reports every task 64 bytes off, and four of its key nodes vanish) nor the other versions. The
// agreement figures are printed. The multi-build task_struct model ($DEEPMEM_MODELS/multibuild,
// trained on dumps of ten builds, these among them: a check of the pick and the fit, not of
// accuracy) is what `dmdetect DUMP` picks on every build but the 6.1 model's own, and it fits each.
// Exits 77 (skipped) without builds/READY.
#include "detect/fit.hpp"
#include "graph/text_lines.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using namespace deepmem;
namespace fs = std::filesystem;

TEST_CASE("fit: banners and the shipped task_struct model's fit on real dumps of several builds") {
    const char* env = std::getenv("DEEPMEM_DUMPS");
    const fs::path builds = fs::path(env && *env ? env : "/work/dumps") / "builds";
    std::vector<std::string> names;
    {
        std::ifstream ready(builds / "READY");
        for (std::string n; std::getline(ready, n);)
            if (!n.empty() && fs::exists(builds / n / "DONE") && fs::exists(builds / n / "dump.elf")) names.push_back(n);
    }
    const char* models = std::getenv("DEEPMEM_MODELS");
    const fs::path model_path = fs::path(models ? models : "data/models") / "task_struct.cereal";
    if (names.empty() || !fs::exists(model_path)) {
        std::printf("skipped: no real dumps of several builds (%s/READY) or no %s\n", builds.c_str(), model_path.c_str());
        std::exit(77);
    }
    for (const std::string& name : names) {
        CAPTURE(name);
        const auto meta_bytes = read_whole_file((builds / name / "meta.json").string(), "meta.json");
        const std::string_view meta(reinterpret_cast<const char*>(meta_bytes.data()), meta_bytes.size());
        const std::string release(json_string_field(meta, "kernel_release").value_or("?"));
        const std::string version(json_string_field(meta, "kernel_version").value_or("?"));

        Detector d;
        d.add_model(model_path.string());
        const MemoryGraph g = d.build_graph((builds / name / "dump.elf").string());
        const auto& banner = g.info().kernel_banner;
        REQUIRE(banner.has_value());
        CHECK(banner->in_kernel_image());
        CHECK(banner->banner.release == release);
        CHECK(banner->banner.numbered());   // the real linux_banner, not 6.1+'s placeholder
        CHECK(banner->banner.version.find("Debian " + version + " ") != std::string::npos);

        DetectOptions opt;
        opt.measure_agreement = true;
        const auto found = d.detect(g, opt);
        const ModelFit fit = assess_fit(d.model(0), model_path.string(), banner, d.last_agreements().at(0));
        MESSAGE(name << ": " << banner->banner.release << ", " << found.size() << " task_structs, build "
                     << std::string(to_string(fit.build)) << ", votes agree on " << fit.agreement.agreeing << " of "
                     << fit.agreement.objects << " candidate objects, " << fit.missing.size() << " key nodes missing, fits "
                     << fit.fits << (fit.reason.empty() ? "" : " (" + fit.reason + ")"));
        if (name == "6.1") CHECK(fit.fits);
        if (name == "6.1-rt" || name == "5.10" || name == "6.12") CHECK_FALSE(fit.fits);
        if (name == "6.1-rt") {   // not only by version: its key nodes near the end vanished
            CHECK(fit.build == BuildMatch::SameVersion);
            CHECK(fit.agreement.objects >= kMinAgreementObjects);
            CHECK_FALSE(fit.missing.empty());
        }

        const fs::path multi_path = fs::path(models ? models : "data/models") / "multibuild" / "task_struct.cereal";
        if (!fs::exists(multi_path)) continue;
        const std::vector<Model> both = {Model::load(model_path.string()), Model::load(multi_path.string())};
        const std::vector<size_t> picked = pick_models(both, banner);
        REQUIRE(picked.size() == 1);
        CHECK(picked[0] == (fit.build == BuildMatch::SameBuild ? 0u : 1u));
        Detector m;
        m.add_model(multi_path.string());
        const auto found_multi = m.detect(g, opt);
        const ModelFit multi_fit = assess_fit(m.model(0), multi_path.string(), banner, m.last_agreements().at(0));
        MESSAGE(name << ": multi-build model: " << found_multi.size() << " task_structs, build "
                     << std::string(to_string(multi_fit.build)) << ", votes agree on " << multi_fit.agreement.agreeing
                     << " of " << multi_fit.agreement.objects << ", fits " << multi_fit.fits
                     << (multi_fit.reason.empty() ? "" : " (" + multi_fit.reason + ")"));
        // CI builds its dumps from the archive's newest package, maybe a later ABI than the model saw.
        CHECK((multi_fit.build == BuildMatch::SameBuild || multi_fit.build == BuildMatch::SameVersion));
        CHECK(multi_fit.fits);
        CHECK(found_multi.size() >= found.size());
    }
}
