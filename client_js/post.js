// The page of one post: nothing live, only its times in the reader's zone.
import { keepTimesCurrent } from "./times.js";

keepTimesCurrent(document);
