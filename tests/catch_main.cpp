// The one Catch2 main for every test executable (compiled once: it is slow to build).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
