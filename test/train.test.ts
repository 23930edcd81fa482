import { trainSuite } from "./train-suite.ts";

trainSuite("cpu");
